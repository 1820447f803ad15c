"""Generative models: autoencoders, GANs and adversarial autoencoders.

Each trainer here is a case of the one epoch engine (:class:`jaxdl.train.EpochTrainer`):
a state, an un-jitted step, and ``run_epochs``; the progress line, History,
callbacks, ModelCheckpoint and bit-identical resume come from the engine.

- :class:`Autoencoder`: an encoder and a decoder as one model, trained with
  ``train.Trainer.fit(x, x)``.
- :class:`GAN`, :class:`GANState`, :func:`make_gan_step`, :class:`GANTrainer`:
  generative adversarial networks with the losses of :mod:`objectives`.
- :class:`AdversarialAutoencoder`, :class:`AAEState`, :func:`make_aae_step`,
  :class:`AAETrainer`: autoencoders whose codes are matched to a prior
  (:func:`gaussian_prior`, :func:`mixture_prior`) by a discriminator.
- :mod:`metrics`: mode coverage and MMD; :class:`SampleGrid`: a callback
  drawing samples to a PNG every few epochs.
"""

from jaxdl.generative import metrics, objectives
from jaxdl.generative.aae import AAEState, AAETrainer, AdversarialAutoencoder, make_aae_step
from jaxdl.generative.autoencoder import Autoencoder
from jaxdl.generative.callbacks import SampleGrid, save_samples
from jaxdl.generative.gan import GAN, GANState, GANTrainer, make_gan_step
from jaxdl.generative.priors import gaussian_prior, mixture_prior

__all__ = [
    "Autoencoder", "GAN", "GANState", "GANTrainer", "make_gan_step",
    "AdversarialAutoencoder", "AAEState", "AAETrainer", "make_aae_step",
    "gaussian_prior", "mixture_prior", "SampleGrid", "save_samples", "metrics", "objectives",
]
