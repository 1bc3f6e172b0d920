#!/usr/bin/env python
"""Train an image classifier for the robustness tables: natural, PGD-AT, ART, IG-NORM, IG-SUM-NORM.

Front door of wsol.cli.train_classifier (console script: art-wsol-train-classifier); see --help.
"""

import sys

from wsol.cli.train_classifier import main
from wsol.cli.train_classifier import (  # noqa: F401  (importable from here as before)
    make_config, parse, preset,
)

if __name__ == "__main__":
    sys.exit(main())
