#!/usr/bin/env python
"""Second stage of weakly supervised segmentation: train a segmentation network on a WSOL.

Front door of segmentation.cli.train_segmenter (console script: art-wsol-train-segmenter); see --help.
"""

import sys

from segmentation.cli.train_segmenter import main
from segmentation.cli.train_segmenter import (  # noqa: F401  (importable from here as before)
    parse,
)

if __name__ == "__main__":
    sys.exit(main())
