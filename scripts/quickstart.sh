#!/usr/bin/env bash
# Fresh machine to first output: installs dependencies, builds, and runs the main job.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake --preset release >/dev/null
cmake --build --preset release --target kvevents-cli
echo "== kvevents-cli decode examples/samples.hex"
build/release/examples/kvevents-cli/kvevents-cli decode examples/samples.hex
