#!/usr/bin/env python
"""Validate a CUB-200-2011 folder (official layout or wsolevaluation metadata).

Front door of wsol.cli.check_dataset (console script: art-wsol-check-dataset); see --help.
"""

import sys

from wsol.cli.check_dataset import main

if __name__ == "__main__":
    sys.exit(main())
