#!/usr/bin/env python
"""Write wsolevaluation's ILSVRC metadata (train/val/test) from the official ImageNet layout.

Front door of wsol.cli.prepare_ilsvrc (console script: art-wsol-prepare-ilsvrc); see --help.
"""

import sys

from wsol.cli.prepare_ilsvrc import main

if __name__ == "__main__":
    sys.exit(main())
