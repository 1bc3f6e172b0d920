#!/usr/bin/env python
"""Side-by-side gradient maps and CAMs of several checkpoints on the same test images.

Front door of wsol.cli.compare_maps (console script: art-wsol-compare-maps); see --help.
"""

import sys

from wsol.cli.compare_maps import main
from wsol.cli.compare_maps import (  # noqa: F401  (importable from here as before)
    parse, PROG,
)

if __name__ == "__main__":
    sys.exit(main())
