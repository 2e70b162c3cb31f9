#!/usr/bin/env bash
# Install, then run the main job on the built-in default: synthesise a video set whose classes need
# both look and motion, extract it, train FGM-CLIP and its single-stream baselines over two seeds,
# print validation metrics with each stream's own accuracy. Extra args go to fgm-demo.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/setup.sh
fgm-demo "$@"
