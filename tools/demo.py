#!/usr/bin/env python
"""The art-wsol demo: natural training vs ART (and ADL, PGD-AT) on the built-in synthetic data, CPU.

Front door of wsol.cli.demo (console script: art-wsol-demo); see --help.
"""

import sys

from wsol.cli.demo import main
from wsol.cli.demo import (  # noqa: F401  (importable from here as before)
    common_overrides, compare_overlays, CONFIGS, COST, fmt, history, METHODS, parse, run_stage,
    write_report,
)

if __name__ == "__main__":
    sys.exit(main())
