#!/bin/bash
# Runs one libFuzzer target of build-asan (cmake -DPIDISTILL_FUZZ=ON, see docs/RELIABILITY.md) from its committed
# corpus: ASan + UBSan, no single allocation above 512 MB, 5 s per input. The process limit is 1024 MB: LibTorch and
# ASan take 330-450 MB before any input, and ASan's quarantine of freed memory adds up to 256 MB more (a 512 MB
# process limit reported an empty input as out-of-memory). New inputs go to a scratch corpus
# (not committed); a crashing, leaking or slow input is written into tests/fuzz/corpus/TARGET/ for CTest's replay.
# usage: tests/fuzz/run.sh TARGET SECONDS [BUILD_DIR] [extra libFuzzer flags]
set -euo pipefail
target=$1 seconds=$2 build=${3:-build-asan}
shift $(( $# < 3 ? $# : 3 ))
here=$(cd "$(dirname "$0")" && pwd)
scratch=${FUZZ_SCRATCH:-/tmp/pidistill-fuzz}/$target
mkdir -p "$scratch"
export OMP_NUM_THREADS=1
# LibTorch keeps its allocations to the end of the process: leaks are not checked per input.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
exec "$build/fuzz_$target" -max_total_time="$seconds" -rss_limit_mb=1024 -malloc_limit_mb=512 -timeout=5 \
  -max_len=65536 -print_final_stats=1 -artifact_prefix="$here/corpus/$target/" "$@" "$scratch" "$here/corpus/$target"
