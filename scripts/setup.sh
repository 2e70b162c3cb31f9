#!/usr/bin/env bash
# Create .venv (if missing) and install fgm with its pinned dependencies. Sourced by demo.sh and test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
. .venv/bin/activate
python -m pip install -q --upgrade pip
python -m pip install -q -e ".[test,onnx,tensorboard,s3,detr]"
# A second OpenCV wheel beside opencv-contrib-python shadows its cv2 module (no cv2.optflow, no DIS presets).
if python -m pip show -q opencv-python opencv-python-headless >/dev/null 2>&1; then
  echo "removing a second OpenCV wheel that would shadow opencv-contrib-python" >&2
  python -m pip uninstall -y -q opencv-python opencv-python-headless || true
  python -m pip install -q --force-reinstall --no-deps "opencv-contrib-python==5.0.0.93"
fi
