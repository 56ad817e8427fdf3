"""Accord mllp layer."""
