#!/bin/bash
# The whole test suite: installs and builds as needed, then runs every tier through CTest
# (labels: unit, integration, vm). Extra arguments go to ctest, e.g. `-L unit`.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
BUILD_DIR=${BUILD_DIR:-build}
cd "$BUILD_DIR"
ctest --output-on-failure --timeout 1200 "$@"
