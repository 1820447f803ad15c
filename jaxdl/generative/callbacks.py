"""Placeholder until its helper writes this module."""
SampleGrid = None
save_samples = None
