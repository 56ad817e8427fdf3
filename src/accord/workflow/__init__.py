"""Accord workflow layer."""
