#!/usr/bin/env python
"""Write the synthetic CUB-format dataset (see wsol/data/synthetic.py and docs/synthetic.md).

Front door of wsol.cli.make_synthetic_cub (console script: art-wsol-make-synthetic-cub); see --help.
"""

import sys

from wsol.cli.make_synthetic_cub import main
from wsol.cli.make_synthetic_cub import (  # noqa: F401  (importable from here as before)
    build_parser,
)

if __name__ == "__main__":
    sys.exit(main())
