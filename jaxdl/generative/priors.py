"""Placeholder until its helper writes this module."""
gaussian_prior = None
mixture_prior = None
