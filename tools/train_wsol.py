#!/usr/bin/env python
"""Train a WSOL classifier with any registered method (`--method`, wsol.methods.list_methods()): natural
(CAM), ART, PGD-AT, ADL, IG-NORM, IG-SUM-NORM, HaS, ACoL, SPG, CutMix, and the few-shot
fully supervised baseline FSL (trained on the val split's boxes or masks).

Front door of wsol.cli.train_wsol (console script: art-wsol-train); see --help.
"""

import sys

from wsol.cli.train_wsol import main
from wsol.cli.train_wsol import (  # noqa: F401  (importable from here as before)
    build_parser, check_choice, config_from_args, flag_overrides, PAPER_ARCHS, parse, PRESET_ARCH,
    preset_config, run,
)

if __name__ == "__main__":
    sys.exit(main())
