#!/usr/bin/env python
"""Attributional, adversarial and corruption robustness of a trained classifier.

Front door of wsol.cli.eval_robustness (console script: art-wsol-eval-robustness); see --help.
"""

import sys

from wsol.cli.eval_robustness import main
from wsol.cli.eval_robustness import (  # noqa: F401  (importable from here as before)
    parse, PRESET_DATASET,
)

if __name__ == "__main__":
    sys.exit(main())
