#!/bin/bash
# The hardening tiers (docs/hardening.md): a second build tree, build-asan, made with clang and
# -fsanitize=address,undefined, in which the unit tier runs again and every parser's libFuzzer
# target replays its corpus and then fuzzes for a bounded time (CTest labels unit and fuzz); then a
# selection of integration tests runs against build-asan's memscope (the test binary and test
# programs of the GCC build in build/, MEMSCOPE_TEST_BINARY naming the sanitizer binary).
# MEMSCOPE_ASAN_INTEGRATION=all runs every integration test that way (by hand), =0 none.
# Extra arguments go to ctest in build-asan, e.g. `-L fuzz` or `-R fuzz_elf_object`, and skip the
# integration tests.
# MEMSCOPE_FUZZ_SECONDS (default 25) is the length of each target's bounded run. `--build-only`
# configures and builds the tree and runs nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh >/dev/null
BUILD_DIR=${ASAN_BUILD_DIR:-build-asan}
launcher=()
if command -v ccache >/dev/null; then
  launcher=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
fi
CC=clang CXX=clang++ cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DMEMSCOPE_SANITIZE=ON -DMEMSCOPE_FUZZ=ON -DMEMSCOPE_FUZZ_SECONDS="${MEMSCOPE_FUZZ_SECONDS:-25}" \
  "${launcher[@]}" >/dev/null
# Only what these tiers run: the unit tests and the fuzz targets (not the binary's test programs).
cmake --build "$BUILD_DIR" -j"$(nproc)" --target unit_tests symbols_test hostile_files_test \
  fuzz_elf_object fuzz_usdt_notes fuzz_cfi_table fuzz_process_maps memscope
GCC_BUILD_DIR=${BUILD_DIR_GCC:-build}
integration=${MEMSCOPE_ASAN_INTEGRATION:-ci}
if [[ $integration != 0 ]] && (($# == 0)); then
  # Configured as scripts/setup.sh does when it is not yet (configuring it again with other options
  # would rebuild it all).
  [[ -f $GCC_BUILD_DIR/CMakeCache.txt ]] || cmake -S . -B "$GCC_BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build "$GCC_BUILD_DIR" -j"$(nproc)" --target integration_tests
fi
[[ ${1:-} == --build-only ]] && exit 0
asan_memscope=$(realpath "$BUILD_DIR/memscope")
gcc_build=$(realpath -m "$GCC_BUILD_DIR")
cd "$BUILD_DIR"
# A sanitizer report ends the process with an error; LSan checks every test process at exit.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:halt_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
if (($#)); then
  ctest --output-on-failure --timeout 600 "$@"
else
  # Left out here, run in build/: the sinks' inline-chain tests take their fixture from GCC's DWARF
  # for an always_inline call in the test binary itself (tests/unit/inlined_call.hpp); clang
  # describes that call differently, which says nothing about memscope.
  status=0
  ctest --output-on-failure --timeout 600 -L 'unit|fuzz' \
    -E '^(TextSink\.InlinedFrames|JsonSink\.InlinedFrames|FoldedSink\.InlinedFunctions|Pprof\.InlinedFunctions)' ||
    status=$?
  # The integration tests under the sanitizers, CI-sized (29 tests, 89 s against build-asan's
  # memscope on the development machine; docs/hardening.md): the code that reads other users' files (HostileFiles), the stack service and
  # its tables (Unwind), memleak's probes, frees, exec and scans of stopped processes (Memleak*,
  # MemleakScan), per-interval map reading (IntervalCounts), USDT notes (Usdt). A sanitizer report
  # makes memscope exit non-zero, which every one of these tests checks.
  selection='^(HostileFiles\..*|Unwind\.(StrdupFromMakeLabel|LibrarySwappedAtTheSameAddresses|FaultsInMemsetFromTouchPagesHere|TablesOfObjectsNoProcessMapsAreFreed)|Memleak\.(SeedProgramNamesFibonacciAndChild|EachAllocatorFunctionLeaksItsExactBytes|KernelModeSeesPipeMemoryComeAndGo)|MemleakLoad\.(ReallocDoesNotForgetANewerBlockAtItsOldAddress|MremapReturningAfterItsOldAddressIsMappedAgainKeepsTheNewMapping|ExecUnderPidForgetsTheOldImage)|MemleakScan\.(SeedProgramLeaksAreLeakedInFibonacciCalledFromChild|RunningProcessByPidGetsVerdicts|ShortLivedCommandGetsItsVerdictAfterAtexit|AlreadyTracedTargetIsRefusedInOneLine)|IntervalCounts\.(FaultsReportsAddUpToEveryFault|Mmapsnoop.*)|Usdt\..*)$'
  case $integration in
    0) ;;
    all) (cd "$gcc_build" && MEMSCOPE_TEST_BINARY=$asan_memscope ctest --output-on-failure --timeout 600 \
            -L integration) || status=$? ;;
    *) (cd "$gcc_build" && MEMSCOPE_TEST_BINARY=$asan_memscope ctest --output-on-failure --timeout 600 \
          -L integration -R "$selection") || status=$? ;;
  esac
  exit $status
fi
