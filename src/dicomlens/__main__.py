"""``python -m dicomlens``."""

import sys

from dicomlens.cli import main

sys.exit(main())
