#!/usr/bin/env bash
# Fresh machine to first output: installs dependencies, builds, and runs the demo: a mock vLLM
# engine with dropped batches and a restart, followed by a ZmqClient that must lose nothing, then
# a prompt routed by a PrefixIndex that three mock engines' events keep current.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake --preset release >/dev/null
cmake --build --preset release --target kvevents-cli
build/release/examples/kvevents-cli/kvevents-cli demo "$@"
