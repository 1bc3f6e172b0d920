#!/usr/bin/env python
"""Regenerate CIFAR-10-C offline from the CIFAR-10 test batches (CIFAR-10-C constants).

Front door of wsol.cli.make_cifar10c (console script: art-wsol-make-cifar10c); see --help.
"""

import sys

from wsol.cli.make_cifar10c import main
from wsol.cli.make_cifar10c import (  # noqa: F401  (importable from here as before)
    build_parser, SETS,
)

if __name__ == "__main__":
    sys.exit(main())
