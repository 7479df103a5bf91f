#!/usr/bin/env bash
# Run here, where pip reaches the registry: the wheels of artkit's dependencies that the GPU machines' image lacks
# (it has torch, timm, pandas, scikit-learn, OpenCV, Pillow, Typer, Rich, matplotlib, PyYAML, pytest), at this
# venv's versions, for the image's Python 3.12, into bench/_work/wheels (git-ignored), which gpu_day.sh installs.
set -euo pipefail
cd "$(dirname "$0")/.."
out=bench/_work/wheels
# typing-extensions too: pydantic needs a newer one than an image may have; and timm, so that the GPU runs the
# timm the numbers here came from (timm's train.py, carried beside, needs a recent one)
names=(albumentations albucore pydantic pydantic_core annotated-types typing-inspection typing-extensions simsimd stringzilla
  cleanlab termcolor timm)
mapfile -t pins < <(python - "${names[@]}" <<'PY'
import sys
from importlib.metadata import version

for name in sys.argv[1:]:
    print(f"{name}=={version(name)}")
PY
)
rm -rf "$out" && mkdir -p "$out"
platforms=()
for p in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux1_x86_64; do
  platforms+=(--platform "$p")
done
python -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp "${platforms[@]}" \
  -d "$out" "${pins[@]}"
ls "$out" && du -sh "$out"
