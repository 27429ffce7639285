#!/bin/bash
# Long fuzzing by hand (docs/hardening.md): each libFuzzer target of build-asan for SECONDS (default
# 600), one after another, starting from the checked-in corpus. New inputs go to
# build-asan/fuzz/<target>/, crashes to build-asan/fuzz/<target>-crash-*; each run's final figures
# (executions, coverage, peak memory) are printed. `scripts/fuzz.sh 3600 elf_object` runs one target.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-600}
shift || true
targets=("$@")
((${#targets[@]})) || targets=(elf_object usdt_notes cfi_table process_maps)
BUILD_DIR=${ASAN_BUILD_DIR:-build-asan}
./scripts/test-hardened.sh --build-only
status=0
for target in "${targets[@]}"; do
  mkdir -p "$BUILD_DIR/fuzz/$target"
  echo "== $target: $seconds s"
  "$BUILD_DIR/fuzz/fuzz_$target" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$BUILD_DIR/fuzz/$target-" \
    "$BUILD_DIR/fuzz/$target" "tests/fuzz/corpus/$target" 2>&1 |
    grep -E '^(stat::|#[0-9]+ +DONE|==[0-9]+==|SUMMARY|artifact_prefix|Test unit written)' || status=1
done
exit $status
