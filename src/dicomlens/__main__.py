"""``python -m dicomlens``."""

import sys

from dicomlens.cli import entry

sys.exit(entry())
