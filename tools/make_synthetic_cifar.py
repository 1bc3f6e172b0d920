#!/usr/bin/env python
"""Write the synthetic CIFAR-10-format dataset (10 shape x texture classes at 32 px).

Front door of wsol.cli.make_synthetic_cifar (console script: art-wsol-make-synthetic-cifar); see --help.
"""

import sys

from wsol.cli.make_synthetic_cifar import main

if __name__ == "__main__":
    sys.exit(main())
