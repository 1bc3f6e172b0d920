#!/usr/bin/env python
"""Random hyperparameter search with a fixed trial budget per method (Choe et al., CVPR 2020):
select on validation, retrain the chosen setting with several seeds, score test.

Front door of wsol.cli.search (console script: art-wsol-search); see --help.
"""

import sys

from wsol.cli.search import main

if __name__ == "__main__":
    sys.exit(main())
