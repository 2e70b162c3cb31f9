#!/usr/bin/env bash
# Install, then run the main job on the built-in default: synthesise a motion-only video set,
# extract it, train FGM-CLIP and a no-motion ablation, print validation metrics. Extra args go to fgm-demo.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/setup.sh
fgm-demo "$@"
