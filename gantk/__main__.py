"""``python -m gantk``: the same as the ``gantk`` command."""

import sys

from gantk.cli import main

sys.exit(main())
