#!/usr/bin/env python
"""Weakly supervised segmentation: pseudo masks from a classifier's heatmaps, scored or written.

Front door of segmentation.cli.segment (console script: art-wsol-segment); see --help.
"""

import sys

from segmentation.cli.segment import main
from segmentation.cli.segment import (  # noqa: F401  (importable from here as before)
    classifier_source, image_mode, parse, pseudo_options,
)

if __name__ == "__main__":
    sys.exit(main())
