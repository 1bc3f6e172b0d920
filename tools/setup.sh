#!/usr/bin/env bash
# Set up art-wsol in ./.venv from the pinned lock file. Idempotent: a second run with an
# unchanged lock file and pyproject.toml returns at once.
#   bash tools/setup.sh            # creates/updates .venv
#   ART_WSOL_VENV=/path bash tools/setup.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
VENV="${ART_WSOL_VENV:-.venv}"
LOCK=requirements-lock.txt

if ! "$PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
    echo "setup: art-wsol needs Python >= 3.11 (found: $("$PY" --version 2>&1)); set PYTHON=/path/to/python3.11" >&2
    exit 1
fi
want=$(cat "$LOCK" pyproject.toml | sha256sum | cut -d' ' -f1)
stamp="$VENV/.art-wsol-setup"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x "$VENV/bin/python" ]; then
    exit 0
fi
echo "setup: installing the pinned environment into $VENV (torch CUDA build, ~6 GB; a few minutes the first time)" >&2
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
quiet() { grep -v -e "is ignored: it is neither a file nor a directory" || true; }
# --no-deps: the lock file is the complete, resolved set, so nothing outside it (e.g. a second
# OpenCV build) can be pulled in.
"$VENV/bin/python" -m pip install -q --no-deps -r "$LOCK" 2>&1 | quiet
"$VENV/bin/python" -m pip install -q --no-deps -e . 2>&1 | quiet
"$VENV/bin/python" - <<'PY'
import importlib.metadata as md
names = {d.metadata["Name"].lower() for d in md.distributions()}
builds = sorted(n for n in names if n.startswith("opencv"))
if builds != ["opencv-python-headless"]:
    raise SystemExit(f"setup: expected exactly opencv-python-headless, found {builds}")
import torch, torchvision, cv2, albumentations, timm  # noqa: F401  (fails loudly if broken)
print(f"setup: ok (torch {torch.__version__}, torchvision {torchvision.__version__}, opencv {cv2.__version__})")
PY
echo "$want" > "$stamp"
