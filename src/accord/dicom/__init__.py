"""Accord dicom layer."""
