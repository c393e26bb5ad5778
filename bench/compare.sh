#!/usr/bin/env bash
# C++ vs our Python reference (bench/python/) of the same PID step, side by side, interleaved: for each case and
# thread count, ROUNDS rounds of (C++ run, Python run), so load on a shared machine hits both alike.
#
#   bench/compare.sh [BUILD_DIR]          (after `make build`; BUILD_DIR defaults to build)
#
# Environment (defaults in brackets):
#   CASES ["fmnist cifar"]  fmnist: the bundled teacher, batch 32, L2; cifar: the paper's CIFAR-10 DDPM++
#                           (55.7M parameters, EDM's random init, written once to out/bench/), batch 8, L2;
#                           cifar-lpips: the same network, batch 4, LPIPS (random VGG16 weights, out/bench/)
#   THREADS ["1 2"]         intra-op threads, the same on both sides (OMP_NUM_THREADS, --threads,
#                           torch.set_num_threads)
#   ROUNDS [3]  WARMUP [2]  STEPS [5]   per run: WARMUP untimed steps, then STEPS timed steps
#   CIFAR_WARMUP [1]  CIFAR_STEPS [3]   the same for the cifar case (about 10-30 s a step on 1-2 cores)
#   OUT [out/bench/compare]             where runs, results.jsonl and table.md go
#   CPP_OPTIONS [""]        more options for the C++ side, '@T' replaced by the thread count
#                           (e.g. "--workers @T": one worker thread per core instead of intra-op threads)
#   PY_ENV [""]             environment for the Python side (e.g. "OPENBLAS_NUM_THREADS=1", which pidistill sets
#                           for itself)
#
# C++: the real `pidistill distill` (--log-every 1); img/s is read from its per-step stats.jsonl lines, so
# start-up and the final checkpoint/grid/export are not timed. Python: bench/python/bench_pid.py under Debian's
# /usr/bin/python3 (python3-torch, the same LibTorch 1.13, oneDNN and OpenBLAS). Peak RSS of each whole process
# from /usr/bin/time -v (the C++ figure includes writing the final checkpoint: student, 3 EMAs, 2 RAdam moments),
# and the C++ process's peak over its steps alone (VmHWM when its last stats line appears).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
CLI=$BUILD/pidistill
PY=/usr/bin/python3
CASES=${CASES:-fmnist cifar}
THREADS=${THREADS:-1 2}
ROUNDS=${ROUNDS:-3}
WARMUP=${WARMUP:-2}
STEPS=${STEPS:-5}
CIFAR_WARMUP=${CIFAR_WARMUP:-1}
CIFAR_STEPS=${CIFAR_STEPS:-3}
OUT=${OUT:-out/bench/compare}
CPP_OPTIONS=${CPP_OPTIONS:-}
PY_ENV=${PY_ENV:-}
export OMP_WAIT_POLICY=passive  # spinning OpenMP threads steal cores on a shared machine (docs/PERFORMANCE.md)

[ -x "$CLI" ] || { echo "error: $CLI not found; hint: make build" >&2; exit 1; }
"$PY" -c "import torch, numpy" 2>/dev/null || {
  echo "error: $PY cannot import torch and numpy; hint: apt-get install python3-torch python3-numpy" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "error: /usr/bin/time not found; hint: apt-get install time" >&2; exit 1; }

mkdir -p "$OUT"
rm -rf "$OUT"/runs "$OUT"/results.jsonl
results=$OUT/results.jsonl
CIFAR_TEACHER=out/bench/cifar10-ddpmpp-random.safetensors
LPIPS_WEIGHTS=out/bench/lpips-vgg16-random.safetensors

rss_mb() { awk -F': ' '/Maximum resident set size/ {printf "%.1f", $2 / 1024}' "$1"; }

echo "pidistill bench/compare.sh  $(date -u '+%Y-%m-%d %H:%M UTC')  commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
echo "$("$CLI" --version)"
echo "CPU: $(lscpu | awk -F': +' '/^Model name/ {print $2}'), $(nproc) cores; flags:$(grep -o -w -E 'avx512f|avx512_bf16|amx_bf16' /proc/cpuinfo | sort -u | tr '\n' ' ' | sed 's/^/ /')"
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)${CPP_OPTIONS:+; C++ options: $CPP_OPTIONS}${PY_ENV:+; Python environment: $PY_ENV}"

for case in $CASES; do
  loss=l2
  case $case in
    fmnist) teacher=models/fashion-mnist-ddpmpp-teacher.safetensors; batch=32; warm=$WARMUP; steps=$STEPS ;;
    cifar)
      teacher=$CIFAR_TEACHER; batch=8; warm=$CIFAR_WARMUP; steps=$CIFAR_STEPS
      [ -f "$teacher" ] || "$PY" bench/python/make_random_teacher.py "$teacher" --preset cifar10-ddpmpp ;;
    cifar-lpips)
      teacher=$CIFAR_TEACHER; batch=4; warm=$CIFAR_WARMUP; steps=$CIFAR_STEPS; loss=lpips
      [ -f "$teacher" ] || "$PY" bench/python/make_random_teacher.py "$teacher" --preset cifar10-ddpmpp
      [ -f "$LPIPS_WEIGHTS" ] || "$PY" bench/python/lpips_vgg.py "$LPIPS_WEIGHTS" ;;
    *) echo "error: unknown case '$case' (expected fmnist, cifar or cifar-lpips)" >&2; exit 1 ;;
  esac
  for t in $THREADS; do
    for r in $(seq 1 "$ROUNDS"); do
      run=$OUT/runs/$case-t$t-r$r
      mkdir -p "$run"
      # C++
      OMP_NUM_THREADS=$t /usr/bin/time -v -o "$run/cpp.time" "$CLI" --threads "$t" distill --teacher "$teacher" --loss "$loss" \
        --batch "$batch" --steps $((warm + steps)) --log-every 1 --snap-every 1000000 --grid-every 0 \
        --grid-seeds 0 --seed "$r" --outdir "$run/cpp" --quiet ${CPP_OPTIONS//@T/$t} \
        $([ "$loss" = lpips ] && echo "--lpips-weights $LPIPS_WEIGHTS") > "$run/cpp.log" 2>&1 &
      timer=$!
      # The C++ process's peak RSS over its steps alone: its VmHWM when the last step's stats line appears (polled
      # every 0.2 s), before the final checkpoint, grid and export.
      steps_hwm=0
      while kill -0 "$timer" 2>/dev/null; do
        cpp=$(pgrep -P "$timer" -x pidistill | head -1 || true)
        if [ -n "$cpp" ] && [ "$(cat "$run"/cpp/*/stats.jsonl 2>/dev/null | wc -l)" -ge $((warm + steps)) ]; then
          steps_hwm=$(awk '/^VmHWM/ {printf "%.1f", $2 / 1024}' "/proc/$cpp/status" 2>/dev/null || echo 0)
          break
        fi
        sleep 0.2
      done
      steps_hwm=${steps_hwm:-0}  # the process may end between the poll and the read
      wait "$timer" || { echo "error: the C++ run failed, see $run/cpp.log" >&2; tail -5 "$run/cpp.log" >&2; exit 1; }
      load=$(cut -d' ' -f1 /proc/loadavg)
      "$PY" - "$run"/cpp/*/stats.jsonl "$warm" "$batch" "$(rss_mb "$run/cpp.time")" "$case" "$t" "$r" "$load" "$steps_hwm" \
        >> "$results" <<'EOF'
import json, sys
path, warm, batch, rss, case, t, r, load, steps_hwm = sys.argv[1:]
lines = [json.loads(l) for l in open(path) if '"img_per_s"' in l]
timed = [l for l in lines if l["step"] > int(warm)]
step_s = [int(batch) / l["img_per_s"] for l in timed]
print(json.dumps({"case": case, "threads": int(t), "round": int(r), "side": "cpp", "step_s": step_s,
                  "peak_rss_mb": float(rss), "steps_peak_rss_mb": float(steps_hwm), "load": float(load),
                  "loss_all": [l["loss"] for l in lines]}))
EOF
      # Python
      # shellcheck disable=SC2086  # PY_ENV holds words
      env OMP_NUM_THREADS=$t $PY_ENV /usr/bin/time -v -o "$run/py.time" "$PY" bench/python/bench_pid.py --teacher "$teacher" \
        --batch "$batch" --warmup "$warm" --steps "$steps" --threads "$t" --seed "$r" --loss "$loss" \
        $([ "$loss" = lpips ] && echo "--lpips $LPIPS_WEIGHTS") > "$run/py.json" 2> "$run/py.log" ||
        { echo "error: the Python run failed, see $run/py.log" >&2; tail -5 "$run/py.log" >&2; exit 1; }
      load=$(cut -d' ' -f1 /proc/loadavg)
      "$PY" - "$run/py.json" "$(rss_mb "$run/py.time")" "$case" "$t" "$r" "$load" >> "$results" <<'EOF'
import json, sys
path, rss, case, t, r, load = sys.argv[1:]
d = json.load(open(path))
print(json.dumps({"case": case, "threads": int(t), "round": int(r), "side": "python", "step_s": d["step_s"],
                  "peak_rss_mb": float(rss), "load": float(load), "loss_all": d["loss_all"]}))
EOF
      echo "  $case threads $t round $r done (load $load)"
    done
  done
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
"$PY" bench/python/compare_table.py "$results" | tee "$OUT/table.md"
