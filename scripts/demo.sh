#!/bin/bash
# Quick start: installs and builds as needed, then shows what memscope sees of a bundled workload.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
BUILD_DIR=${BUILD_DIR:-build}
exec "$BUILD_DIR/memscope" demo "$@"
