#!/usr/bin/env python
"""Write wsolevaluation metadata (train/[val/]test) for an official CUB-200-2011 folder.

Front door of wsol.cli.convert_cub (console script: art-wsol-convert-cub); see --help.
"""

import sys

from wsol.cli.convert_cub import main

if __name__ == "__main__":
    sys.exit(main())
