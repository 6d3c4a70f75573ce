#!/usr/bin/env bash
# Installs a built percept wheel into a clean virtual environment and uses it the way a user would,
# from a folder outside the checkout: `percept models`, `percept demo`, `percept stylize`,
# `percept webcam --headless` on a clip made here, and `percept.stylize(...)` (same pixels as the CLI).
#
#   scripts/smoke_wheel.sh dist/percept-0.1.0-py3-none-any.whl /tmp/percept-wheel-venv
set -euo pipefail
wheel=$(realpath "$1")
venv=$(realpath -m "${2:-${TMPDIR:-/tmp}/percept-wheel-venv}")
repo=$(cd "$(dirname "$0")/.." && pwd)
PY=${PY:-python3}

t0=$(date +%s)
"$PY" -m venv --clear "$venv"
"$venv/bin/python" -m pip install -q --upgrade pip 2>&1 | grep -v "^WARNING: Location" || true
# torch and torchvision come from this machine's wheel store, the rest from the package index
"$venv/bin/python" -m pip install -q "$wheel" 2>&1 | grep -v "^WARNING: Location" || true
"$venv/bin/python" -c "import percept" || { echo "smoke: the wheel did not install" >&2; exit 1; }
echo "smoke: installed $(basename "$wheel") into $venv in $(( $(date +%s) - t0 )) s"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
export PERCEPT_USER_MODELS="$work/user-models"   # an empty user folder: nothing from this machine leaks in
unset PERCEPT_CHECKPOINTS
mkdir -p "$PERCEPT_USER_MODELS"

"$venv/bin/percept" models
"$venv/bin/percept" demo -o demo --size 256 --quiet
test -s demo/contact_sheet.png
"$venv/bin/python" - "$repo" <<'EOF'
import sys
from pathlib import Path

import numpy as np
import skimage.data
from PIL import Image

import percept
from percept.registry import list_models, shipped_dir

repo = Path(sys.argv[1]).resolve()
pkg = Path(percept.__file__).resolve()
site = Path(sys.prefix).resolve()
assert site in pkg.parents and pkg.parent != repo / "percept", f"percept not imported from the wheel: {pkg}"
assert shipped_dir().resolve() == pkg.parent / "checkpoints", f"models not read from the wheel: {shipped_dir()}"
assert len(list_models(source="shipped")) >= 12, list_models(source="shipped")
Image.fromarray(skimage.data.chelsea()).save("cat.jpg")
api = percept.stylize("cat.jpg", "starry_night_rt", size=200, strength=0.8, preserve_color=True)
api.save("api.png")
print(f"smoke: percept {percept.__version__} from {pkg.parent}, models in {shipped_dir()}")
EOF
"$venv/bin/percept" stylize cat.jpg --model starry_night_rt --size 200 --strength 0.8 --preserve-color -o cli.png
"$venv/bin/python" -c "
import numpy as np; from PIL import Image
a, b = (np.asarray(Image.open(p), dtype=int) for p in ('api.png', 'cli.png'))
assert a.shape == b.shape and (a == b).all(), 'the API and the CLI gave different pixels'
print('smoke: percept.stylize and percept stylize give identical pixels', a.shape)"
"$venv/bin/python" -c "
import cv2, numpy as np
w = cv2.VideoWriter('clip.mp4', cv2.VideoWriter_fourcc(*'mp4v'), 10, (96, 64))
for i in range(12):
    f = np.zeros((64, 96, 3), np.uint8); f[:, :] = (40, 90, 160); cv2.circle(f, (10 + 6 * i, 32), 10, (255, 220, 0), -1)
    w.write(f)
w.release()"
"$venv/bin/percept" webcam --headless --source clip.mp4 -o cam.mp4 --frames 6 --size 96
test -s cam.mp4
# the web page ships inside the wheel: export a site (onnxruntime-web from percept's cache or npm) and look at it
if command -v npm >/dev/null || [ -d "${XDG_CACHE_HOME:-$HOME/.cache}/percept/onnxruntime-web-1.30.0" ]; then
  "$venv/bin/percept" export starry_night_rt --web site --quiet
  test -s site/index.html && test -s site/app.js && test -s site/ort/ort.min.mjs && test -s site/models.json
  grep -q 'id="selftest"' site/index.html
fi
if "$venv/bin/percept" stylize cat.jpg --model no_such_model -o x.png 2>err.txt; then
  echo "smoke: an unknown model did not fail" >&2; exit 1
fi
test "$(wc -l <err.txt)" = 1 && grep -q "unknown model 'no_such_model'" err.txt
echo "smoke: all good in $(( $(date +%s) - t0 )) s"
