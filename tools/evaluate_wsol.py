#!/usr/bin/env python
"""Score WSOL localization: a checkpoint on a CUB split, or saved score maps.

Front door of wsol.cli.evaluate_wsol (console script: art-wsol-evaluate); see --help.
"""

import sys

from wsol.cli.evaluate_wsol import main
from wsol.cli.evaluate_wsol import (  # noqa: F401  (importable from here as before)
    parse, SUMMARY_KEYS,
)

if __name__ == "__main__":
    sys.exit(main())
