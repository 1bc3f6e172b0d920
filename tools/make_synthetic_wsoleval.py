#!/usr/bin/env python
"""Write a synthetic ILSVRC or OpenImages30k in wsolevaluation's layout (see wsol/data/synthetic_wsoleval.py).

Front door of wsol.cli.make_synthetic_wsoleval (console script: art-wsol-make-synthetic-wsoleval); see --help.
"""

import sys

from wsol.cli.make_synthetic_wsoleval import main
from wsol.cli.make_synthetic_wsoleval import (  # noqa: F401  (importable from here)
    build_parser,
)

if __name__ == "__main__":
    sys.exit(main())
