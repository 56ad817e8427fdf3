"""Accord web layer."""
