"""The command-line programs: one module per tool, each with ``main(argv) -> exit status``.

``tools/<name>.py`` and the console scripts in pyproject.toml (``art-wsol-*``) call these.
Presets (configs/) and the default run folder (runs/) are found in the source checkout, ``REPO``.
"""

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
