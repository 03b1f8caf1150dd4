"""sfxgan: conditional sound-effect generation with a regularized WGAN.

The method, along the data's path: `data` (audio, datasets, batches) -> `dsp` (the STFT,
Griffin-Lim) -> `model` (networks, losses) -> `training` -> `run_folder` -> `generate` ->
`evaluate`; beside it `config` (settings, presets), `files` (atomic writes, tagged loads),
`threads`, `errors`, `plots`. Around it: `apps` (studio, export, DCASE layout, experiments,
benchmarks, demo data) and `cli` (one module per command). docs/architecture.md has the
picture and a line per module.
"""

import os

# The OpenMP runtime torch ships spins while its threads wait, which turns one busy core into
# steps many times slower (see sfxgan/threads.py). It reads this once, when torch loads, so it
# is set here, before anything of sfxgan imports torch; a user's own setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from sfxgan import threads as threads  # noqa: E402  (its first load sample is taken at import)

__version__ = "0.1.0"
