#!/bin/bash
# The whole test suite: installs and builds as needed, then runs every tier through CTest
# (labels: unit, integration, vm), then the hardening tiers in a sanitizer build
# (scripts/test-hardened.sh: unit and fuzz under ASan+UBSan). Extra arguments go to ctest for the
# first build only, e.g. `-L unit`, and skip the hardening tiers; MEMSCOPE_HARDENED=0 skips them too.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
BUILD_DIR=${BUILD_DIR:-build}
status=0
(cd "$BUILD_DIR" && ctest --output-on-failure --timeout 1200 "$@") || status=$?
if ((!$#)) && [[ ${MEMSCOPE_HARDENED:-1} != 0 ]]; then
  ./scripts/test-hardened.sh || status=$?
fi
exit $status
