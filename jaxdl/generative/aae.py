"""Placeholder until its helper writes this module."""
AAEState = None
AAETrainer = None
AdversarialAutoencoder = None
make_aae_step = None
