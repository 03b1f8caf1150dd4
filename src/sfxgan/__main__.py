import sys

from sfxgan.cli import main

sys.exit(main())
