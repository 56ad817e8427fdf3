"""Accord store layer."""
