"""Accord mapping layer."""
