#!/usr/bin/env bash
# Build the wheel, install it into a fresh virtual environment with the pinned CPU torch and
# no extras, then import it and run the command line from outside the source tree: the core
# must work with torch, numpy, safetensors and rich only.
#   scripts/check-wheel.sh [PYTHON] [TORCH_REQUIREMENT]
set -euo pipefail
PYTHON=${1:-python3}
TORCH=${2:-torch==2.13.0}
cd "$(dirname "$0")/.."
ROOT=$(pwd)
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
export PIP_DISABLE_PIP_VERSION_CHECK=1

"$PYTHON" -m pip wheel -q --no-deps --wheel-dir "$TMP/dist" "$ROOT"
WHEEL=$(ls "$TMP"/dist/smithing-*.whl)
"$PYTHON" -m venv "$TMP/venv"
"$TMP/venv/bin/pip" install -q "$TORCH" "$WHEEL"  # the pinned torch, then what the wheel needs

cd "$TMP"  # not the source tree: the installed wheel is what is imported
cat > wheelcheck_net.py <<'PY'
from torch import nn


def make(n_inputs, n_classes):
    return nn.Sequential(nn.Linear(n_inputs, 32), nn.Tanh(), nn.Linear(32, n_classes))
PY
"$TMP/venv/bin/python" - "$ROOT" <<'PY'
import importlib.metadata as md
import pathlib
import sys

import smithing

root = pathlib.Path(sys.argv[1])
assert pathlib.Path(smithing.__file__).is_relative_to(sys.prefix), smithing.__file__
ns = {}
exec((root / "src/smithing/_version.py").read_text(), ns)
assert smithing.__version__ == ns["__version__"] == md.version("smithing"), smithing.__version__
assert (pathlib.Path(smithing.__file__).parent / "py.typed").exists()
for extra in ("matplotlib", "sklearn", "ray", "tensorboard", "PIL"):
    try:
        __import__(extra)
    except ImportError:
        continue
    raise SystemExit(f"{extra} is installed with the core only: a core dependency pulls it in")
import smithing.cli, smithing.doctor, smithing.init, smithing.pretrain, smithing.train  # noqa
print(f"wheel ok: smithing {smithing.__version__}, core dependencies only")
PY
"$TMP/venv/bin/smithing" --help > /dev/null
"$TMP/venv/bin/smithing" --version
# without the report extra the doctor still writes its page (no figures); digits needs sklearn
"$TMP/venv/bin/smithing" doctor wheelcheck_net:make --dataset rectangles --examples 128 \
    --lr-steps 10 --out "$TMP/doctor" > /dev/null
grep -q "pip install 'smithing\[report\]'" "$TMP/doctor/doctor.html"
if "$TMP/venv/bin/smithing" train --dataset digits --epochs 1 2> "$TMP/err"; then
  echo "digits trained without scikit-learn?" >&2
  exit 1
fi
grep -qx "smithing train: error: the digits dataset needs scikit-learn: pip install 'smithing\[sklearn\]'" "$TMP/err"
echo "wheel check passed"
