"""Measure a generator: class fit, quality, diversity, memorisation and phase consistency."""

from sfxgan.evaluate.spectrum import ClassFit, mean_spectrum_check, real_mean_spectra

__all__ = ["ClassFit", "mean_spectrum_check", "real_mean_spectra"]
