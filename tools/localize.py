#!/usr/bin/env python
"""Localize the object in images with an ImageNet classifier or a trained WSOL checkpoint.

Front door of wsol.cli.localize (console script: art-wsol-localize); see --help.
"""

import sys

from wsol.cli.localize import main
from wsol.cli.localize import (  # noqa: F401  (importable from here as before)
    parse_args, positive_int,
)

if __name__ == "__main__":
    sys.exit(main())
