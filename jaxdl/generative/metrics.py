"""Placeholder until its helper writes this module."""
