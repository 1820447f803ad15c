"""Placeholder until its helper writes this module."""
GAN = None
GANState = None
GANTrainer = None
make_gan_step = None
