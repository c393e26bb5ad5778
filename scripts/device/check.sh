#!/usr/bin/env bash
# The GPU check of issues 10 and 11 in one call (under 8 minutes on one H100/H200): builds pidistill against the
# machine's PyTorch, runs the golden parity tests on CUDA in float32, times the PID step of the CIFAR-10 DDPM++
# network (batch 64, fp32, bf16 and fp16) and one-call generation (batch 1 latency, batch 256 throughput), runs 2 ranks
# against 1 (NCCL, else Gloo on CUDA tensors) and prints a table with the card's name. Everything lands in $OUT.
#
#   scripts/device/fetch_deps.sh      # here, once: Debian's header-only deps + golden files -> build-deps/
#   device run, carry [build-deps]:   scripts/device/check.sh
#   DEVICE=cpu TORCH_DIR=/work/torch2/torch NVIDIA_LIBS=... scripts/device/check.sh   # dry run on a CPU machine
#
# Environment: DEVICE [cuda] (cpu: the same steps at small sizes, on the bundled teacher), OUT [out/device-check],
# WORK [/tmp/pidistill-device-check] (run folders), BUILD [build-device], DEPS [build-deps], JOBS [nproc],
# PYTHON [python3] (finds torch), TORCH_DIR (the torch package folder, instead of asking PYTHON),
# NVIDIA_LIBS (':'-separated lib folders of the nvidia-* wheels, default TORCH_DIR/../nvidia/*/lib).
# Each step is recorded and the next one runs even when it fails; the exit status says whether all passed.
set -uo pipefail
cd "$(dirname "$0")/../.."
DEVICE=${DEVICE:-cuda}
OUT=${OUT:-out/device-check}
WORK=${WORK:-/tmp/pidistill-device-check}
BUILD=${BUILD:-build-device}
DEPS=$(realpath "${DEPS:-build-deps}")
JOBS=${JOBS:-$(nproc)}
PY=${PYTHON:-python3}
mkdir -p "$OUT" "$WORK"
LOG=$OUT/check.log
TABLE=$OUT/table.md
: >"$LOG"
failures=0
started=$(date +%s)

say() { echo "$*" | tee -a "$LOG"; }
row() { echo "| $1 | $2 |" >>"$TABLE"; }
# step NAME CMD...: runs CMD with its output in the log; a failure is counted and reported, not fatal.
step() {
  local name=$1
  shift
  say "== $name ($(($(date +%s) - started)) s)"
  if "$@" >>"$LOG" 2>&1; then return 0; fi
  failures=$((failures + 1))
  say "!! $name failed (see $LOG)"
  return 1
}

# to_file FILE CMD...: CMD's standard output into FILE (step sends the rest to the log).
to_file() {
  local file=$1
  shift
  "$@" >"$file"
}

# Sizes: the paper's CIFAR-10 network on a GPU; the bundled 1.26M teacher and small batches for a CPU dry run.
if [ "$DEVICE" = cpu ]; then
  TEACHER=models/fashion-mnist-ddpmpp-teacher.safetensors; TEACHER_NAME="bundled teacher (1.26M)"
  GFLOP_PER_IMG=4.58; BATCH=4; WARM=1; STEPS=2; GEN_BIG=8; GEN_CALLS=3
else
  TEACHER=$WORK/cifar10-ddpmpp-random.safetensors; TEACHER_NAME="CIFAR-10 DDPM++ (55.7M)"
  GFLOP_PER_IMG=296.7; BATCH=64; WARM=5; STEPS=20; GEN_BIG=256; GEN_CALLS=20
fi
# FLOPs per image of one PID step (teacher forward, two student forwards and their backward): counted by
# bench/python/flops.py (docs/PERFORMANCE.md).

# --- the machine -------------------------------------------------------------------------------------------------
if [ -n "${TORCH_DIR:-}" ]; then
  torch_dir=$(realpath "$TORCH_DIR")
else
  torch_dir=$("$PY" -c 'import torch, os; print(os.path.dirname(torch.__file__))')
fi
nvidia_libs=${NVIDIA_LIBS:-$(ls -d "$torch_dir"/../nvidia/*/lib 2>/dev/null | paste -sd: -)}
# Why: the wheel's libraries find their nvidia-* neighbours through RUNPATH, but a dry run may keep them elsewhere.
[ -z "$nvidia_libs" ] || export LD_LIBRARY_PATH=$nvidia_libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
card=$(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null | head -1)
[ -n "$card" ] || card="none (nvidia-smi: $(command -v nvidia-smi || echo missing)); CPU $(lscpu | awk -F': +' '/^Model name/ {print $2}')"
torch_version=$(sed -n "s/^__version__ = '\(.*\)'/\1/p" "$torch_dir/version.py")
{
  echo "# pidistill device check, $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet 2>/dev/null || echo ' (+ uncommitted changes)')"
  echo
  echo "Card: $card. Device: $DEVICE. torch $torch_version at $torch_dir; $(nvcc --version 2>/dev/null | tail -1 || echo 'no nvcc');"
  echo "$(g++ --version | head -1); $(cmake --version | head -1); $(nproc) CPU cores."
  echo
  echo "| check | result |"
  echo "| --- | --- |"
} >"$TABLE"
say "card: $card; torch $torch_version ($torch_dir); nvidia libs: ${nvidia_libs:-none}"

# --- build ---------------------------------------------------------------------------------------------------------
golden_tests="test_nets_golden test_edm_precond_golden test_pid_student test_pid_loss test_metrics_lpips"
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
# Why the torch folder in CMAKE_PREFIX_PATH: else TorchConfig may find another libtorch.so first (BUILDING.md).
# Why -rpath-link: libtorch_cuda.so's own NCCL and CUDA libraries must be found at link time, before any older
# copy in a CUDA toolkit's folder.
if step "configure" cmake "${generator[@]}" -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release \
  "-DCMAKE_PREFIX_PATH=$torch_dir/share/cmake;$torch_dir" -DPIDISTILL_DEPS_DIR="$DEPS" \
  -DPIDISTILL_GOLDEN_DIR="$DEPS/golden" -DTORCH_CUDA_ARCH_LIST=9.0 \
  ${nvidia_libs:+"-DCMAKE_EXE_LINKER_FLAGS=-Wl,-rpath-link,$nvidia_libs"} &&
  step "build" cmake --build "$BUILD" -j"$JOBS" --target pidistill bench_generate $golden_tests; then
  row "build" "OK in $(($(date +%s) - started)) s ($(grep -o 'pidistill: multi-GPU training with NCCL' "$LOG" | head -1 || true))"
else
  row "build" "FAILED (check.log)"
  cat "$TABLE"
  exit 1
fi
CLI=$BUILD/pidistill

# --- golden parity on the device, float32 ----------------------------------------------------------------------------
golden_total=0 golden_failed=0 golden_detail=""
for t in $golden_tests; do
  case $t in
    test_nets_golden) filter='NetsGolden.RawNetworkFloat32:NetsGolden.UNetBlockTwoHeads' ;;
    test_edm_precond_golden) filter='PrecondGolden.Float32' ;;
    test_pid_student) filter='PidStudent.GoldenF32' ;;
    test_pid_loss) filter='*_f32*' ;;
    test_metrics_lpips) filter='Lpips.GoldenFloat32' ;;
  esac
  log=$WORK/$t.log
  PIDISTILL_TEST_DEVICE=$DEVICE timeout 300 "$BUILD/$t" --gtest_filter="$filter" >"$log" 2>&1
  code=$?
  cat "$log" >>"$LOG"
  n=$(grep -c '^\[       OK \]' "$log")
  f=$(grep '^\[  FAILED  \] [A-Za-z]' "$log" | sed 's/ (.*//' | sort -u | wc -l)  # each is listed twice
  [ "$code" -eq 0 ] || [ "$f" -gt 0 ] || f=1
  # The comparison closest to its tolerance: "[ rel err ] NAME: ERR (tol TOL)" or "...: ERR (WHERE, tol TOL)".
  worst=$(awk '/^\[ rel err \]/ {e = $0; sub(/.*: /, "", e); split(e, a, " "); t = $0; sub(/.*tol /, "", t);
             r = (t + 0 > 0) ? a[1] / t : 0; if (r >= w) {w = r; l = $0}} END {print l}' "$log" | sed 's/^\[ rel err \] //')
  golden_total=$((golden_total + n + f)) golden_failed=$((golden_failed + f))
  golden_detail="$golden_detail$t: $n passed, $f failed, closest to its bound ${worst:-?}; "
done
[ "$golden_failed" -eq 0 ] || failures=$((failures + 1))
row "golden parity, float32 on $DEVICE ($golden_total tests)" "$([ "$golden_failed" -eq 0 ] && echo PASS || echo "FAIL ($golden_failed)"): $golden_detail"

# --- the teacher ---------------------------------------------------------------------------------------------------
if [ ! -f "$TEACHER" ]; then
  step "random CIFAR-10 teacher" "$PY" bench/python/make_random_teacher.py "$TEACHER" --preset cifar10-ddpmpp ||
    row "teacher" "FAILED to make $TEACHER"
fi

# --- the PID step, fp32, bf16 and (CUDA) fp16 with dynamic loss scaling -----------------------------------------------------------------------------------
# The GPU's peak memory while a command runs (nvidia-smi every 0.5 s), in MiB; "-" without nvidia-smi.
gpu_peak_start() {
  peak_file=$WORK/gpu-mem.txt
  : >"$peak_file"
  if command -v nvidia-smi >/dev/null; then
    (while :; do nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits >>"$peak_file" 2>/dev/null; sleep 0.5; done) &
    peak_pid=$!
  else
    peak_pid=
  fi
}
gpu_peak_stop() {
  [ -n "$peak_pid" ] && kill "$peak_pid" 2>/dev/null && wait "$peak_pid" 2>/dev/null
  sort -n "$peak_file" | tail -1 | awk '{print $1 " MiB"}' | grep . || echo "-"
}
precisions="fp32 bf16"
[ "$DEVICE" = cpu ] || precisions="fp32 bf16 fp16"  # fp16 autocast is CUDA's only
for precision in $precisions; do
  run=$WORK/distill-$precision
  rm -rf "$run"
  gpu_peak_start
  step "PID step $precision" timeout 300 "$CLI" distill --teacher "$TEACHER" --loss l2 --batch "$BATCH" \
    --steps $((WARM + STEPS)) --log-every 1 --snap-every 1000000 --grid-every 0 --grid-seeds 0 --seed 1 \
    --device "$DEVICE" --precision "$precision" --outdir "$run" --quiet
  code=$?
  peak=$(gpu_peak_stop)
  if [ "$code" -eq 0 ]; then
    # Median over the timed steps of batch / img_per_s (each stats line times the step since the previous line).
    result=$("$PY" - "$run"/*/stats.jsonl "$WARM" "$BATCH" "$GFLOP_PER_IMG" <<'EOF'
import json, statistics, sys
path, warm, batch, gflop = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
lines = [json.loads(l) for l in open(path) if '"img_per_s"' in l]
step_s = [batch / l["img_per_s"] for l in lines if l["step"] > warm]
s = statistics.median(step_s)
print(f"{1000 * s:.1f} ms/step, {batch / s:.1f} img/s, {batch / s * gflop / 1000:.2f} TFLOP/s "
      f"({len(step_s)} steps after {warm} warm-up; loss {lines[-1]['loss']:.5f})")
EOF
)
    row "PID step, $TEACHER_NAME, L2, B=$BATCH, $precision" "$result; GPU memory peak $peak"
  else
    row "PID step, $TEACHER_NAME, B=$BATCH, $precision" "FAILED (check.log)"
  fi
done

# --- one-call generation ---------------------------------------------------------------------------------------------
for batch in 1 "$GEN_BIG"; do
  calls=$([ "$batch" = 1 ] && echo $((GEN_CALLS * 5)) || echo "$GEN_CALLS")
  json=$WORK/generate-$batch.json
  if step "one-call generation, batch $batch" to_file "$json" timeout 120 "$BUILD/bench_generate" "$TEACHER" "$DEVICE" \
    "$batch" "$calls" 3; then
    cat "$json" >>"$LOG"
    row "one-call generation, $TEACHER_NAME, B=$batch, fp32" "$("$PY" -c 'import json, sys; d = json.load(open(sys.argv[1])); print("median %.2f ms per call (min %.2f), %.1f img/s, %d calls, host copies included" % (d["median_ms"], d["min_ms"], d["img_per_s"], d["calls"]))' "$json")"
  else
    row "one-call generation, B=$batch" "FAILED (check.log)"
  fi
done

# --- two ranks against one -------------------------------------------------------------------------------------------
# The same global batch on 1 and 2 processes must give the same student (within float tolerance). Two processes
# on one GPU: NCCL refuses a GPU shared by two ranks, so Gloo (CUDA tensors through host memory) is tried next.
eq=$WORK/ranks
rm -rf "$eq"
eq_args=(distill --teacher models/fashion-mnist-ddpmpp-teacher.safetensors --loss l2 --N 8 --batch 8 --steps 3
  --seed 1 --grid-every 0 --grid-seeds 0 --snap-every 100 --quiet --dist-timeout 30 --device "$DEVICE")
step "1 rank" timeout 120 "$CLI" "${eq_args[@]}" --outdir "$eq/one"
backends=$([ "$DEVICE" = cpu ] && echo gloo || echo "nccl gloo")
eq_result="FAILED (check.log)" eq_notes=""
for backend in $backends; do
  port=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  say "== 2 ranks, $backend, port $port"
  for r in 1 0; do
    RANK=$r LOCAL_RANK=$r WORLD_SIZE=2 LOCAL_WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=$port \
      PIDISTILL_DIST_BACKEND=$backend timeout 120 "$CLI" "${eq_args[@]}" --outdir "$eq/two-$backend" \
      >"$WORK/rank$r-$backend.log" 2>&1 &
    eval "pid$r=$!"
  done
  wait "$pid0"; code0=$?
  wait "$pid1"; code1=$?
  cat "$WORK/rank0-$backend.log" "$WORK/rank1-$backend.log" >>"$LOG"
  if [ "$code0" -eq 0 ] && [ "$code1" -eq 0 ]; then
    diff=$("$PY" - "$eq/one" "$eq/two-$backend" <<'EOF'
import glob, os, sys
sys.path.insert(0, "bench/python")
import st_io
a, b = (sorted(glob.glob(os.path.join(d, "*", "student-final.safetensors")))[-1] for d in sys.argv[1:3])
ta, tb = st_io.read(a)[0], st_io.read(b)[0]
print(max(float((ta[k].double() - tb[k].double()).abs().max()) for k in ta if ta[k].is_floating_point()))
EOF
)
    verdict=$("$PY" -c "print('PASS' if float('$diff') < 1e-5 else 'FAIL')")
    [ "$verdict" = PASS ] || failures=$((failures + 1))
    eq_result="$verdict: $backend, 2 processes on $([ "$DEVICE" = cpu ] && echo "the CPU" || echo "$(nvidia-smi -L 2>/dev/null | wc -l) GPU(s)"); largest absolute student weight difference after 3 steps $diff (bound 1e-5)"
    break
  fi
  eq_notes="$eq_notes$backend failed: $(grep -h -m1 -i 'error' "$WORK/rank0-$backend.log" "$WORK/rank1-$backend.log" | head -1 | cut -c1-200); "
done
row "2 ranks vs 1, bundled teacher, global batch 8, 3 steps" "$eq_notes$eq_result"

echo >>"$TABLE"
echo "Total $(($(date +%s) - started)) s; $failures failed step(s). Log: check.log." >>"$TABLE"
cat "$TABLE" | tee -a "$LOG"
[ "$failures" -eq 0 ]
