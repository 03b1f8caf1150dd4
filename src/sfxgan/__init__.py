"""sfxgan: conditional sound-effect generation with a regularized WGAN."""

__version__ = "0.1.0"
