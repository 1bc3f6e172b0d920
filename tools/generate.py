#!/usr/bin/env python
"""Generate class-conditional images with a (robust) classifier, as Santurkar et al. (REFERENCE.md §9).

Front door of wsol.cli.generate (console script: art-wsol-generate); see --help.
"""

import sys

from wsol.cli.generate import main
from wsol.cli.generate import (  # noqa: F401  (importable from here as before)
    parse, PROG,
)

if __name__ == "__main__":
    sys.exit(main())
