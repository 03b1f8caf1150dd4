"""Signal processing of the method: the STFT and log-spectrogram features (`features`) and
phase reconstruction by (fast) Griffin-Lim (`phase`)."""
