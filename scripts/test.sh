#!/usr/bin/env bash
# Install, then run the test suite (the command CI runs).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/setup.sh
python -m pytest -q "$@"
