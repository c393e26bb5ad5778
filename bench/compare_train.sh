#!/usr/bin/env bash
# Teacher-training speed: C++ (`pidistill train`, EDM's loss and loop) vs our Python reference of the same step
# (bench/python/bench_train.py), interleaved round by round. The network is the bundled Fashion-MNIST teacher's
# architecture (DDPM++, 32 channels, 1.26M parameters), batch 64, as models/README.md trained it.
#   bench/compare_train.sh [BUILD_DIR]
# Environment: THREADS ["2"], ROUNDS [3], STEPS [8] timed steps after 2 untimed ones, BATCH [64],
#              CPP_OPTIONS [""], OUT [out/bench/train]
# C++ img/s: the median of stats.jsonl's images_per_s over ticks of one step each (ticks 3 on); Python: the median
# over its timed steps. Peak RSS of each whole process (/usr/bin/time -v).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
CLI=$BUILD/pidistill
THREADS=${THREADS:-2}
ROUNDS=${ROUNDS:-3}
STEPS=${STEPS:-8}
BATCH=${BATCH:-64}
CPP_OPTIONS=${CPP_OPTIONS:-}
OUT=${OUT:-out/bench/train}
DATA=/usr/share/datasets/fashion-mnist
TEACHER=models/fashion-mnist-ddpmpp-teacher.safetensors
export OMP_WAIT_POLICY=passive
[ -x "$CLI" ] || { echo "error: $CLI not found; hint: make build" >&2; exit 1; }
[ -d "$DATA" ] || { echo "error: $DATA not found; hint: apt-get install dataset-fashion-mnist" >&2; exit 1; }
rm -rf "$OUT" && mkdir -p "$OUT"
echo "bench/compare_train.sh $(date -u '+%Y-%m-%d %H:%M UTC') commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
echo "$("$CLI" --version); CPU: $(lscpu | awk -F': +' '/^Model name/ {print $2}'), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
tick=$(awk "BEGIN {print $BATCH / 1000}")
kimg=$(awk "BEGIN {print ($STEPS + 2) * $BATCH / 1000}")
for t in $THREADS; do
  for r in $(seq 1 "$ROUNDS"); do
    run=$OUT/t$t-r$r
    mkdir -p "$run"
    # shellcheck disable=SC2086  # CPP_OPTIONS holds words
    OMP_NUM_THREADS=$t /usr/bin/time -v -o "$run/cpp.time" "$CLI" --threads "$t" train --data "$DATA" --pad 32 \
      --arch ddpmpp --cbase 32 --cres 1,2,2 --blocks 1 --attn 16 --batch "$BATCH" --lr 1e-3 --lr-rampup 0.002 \
      --ema 0.01 --ema-rampup 0.05 --dropout 0 --kimg "$kimg" --tick "$tick" --snap 1000000 --sample-count 0 \
      --seed "$r" --outdir "$run/cpp" $CPP_OPTIONS > "$run/cpp.log" 2>&1 ||
      { echo "error: the C++ run failed, see $run/cpp.log" >&2; tail -3 "$run/cpp.log" >&2; exit 1; }
    OMP_NUM_THREADS=$t /usr/bin/time -v -o "$run/py.time" /usr/bin/python3 bench/python/bench_train.py \
      --teacher "$TEACHER" --batch "$BATCH" --warmup 2 --steps "$STEPS" --threads "$t" --seed "$r" > "$run/py.json" ||
      { echo "error: the Python run failed" >&2; exit 1; }
    echo "  threads $t round $r done (load $(cut -d' ' -f1 /proc/loadavg))"
  done
done
/usr/bin/python3 - "$OUT" <<'PY'
import glob, json, re, statistics, sys
out = sys.argv[1]
rss = lambda f: float(re.search(r"Maximum resident set size \(kbytes\): (\d+)", open(f).read()).group(1)) / 1024 ** 2
rows = {}
for run in sorted(glob.glob(out + "/t*-r*")):
    t = int(run.split("/t")[-1].split("-")[0])
    ticks = [json.loads(l) for l in open(glob.glob(run + "/cpp/*/stats.jsonl")[0])]
    cpp = statistics.median(l["images_per_s"] for l in ticks if l["tick"] >= 3)
    py = json.load(open(run + "/py.json"))["img_per_s"]
    rows.setdefault(t, []).append((cpp, py, rss(run + "/cpp.time"), rss(run + "/py.time")))
print("| case | threads | rounds | C++ img/s | Python img/s | ratio C++/Python (min-max) | C++ peak RSS | Python peak RSS |")
print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
for t, rs in rows.items():
    ratios = [c / p for c, p, _, _ in rs]
    print(f"| teacher training, DDPM++ 1.26M, B=64 | {t} | {len(rs)} | {statistics.median(c for c, *_ in rs):.2f} | "
          f"{statistics.median(p for _, p, _, _ in rs):.2f} | {statistics.median(ratios):.3f} ({min(ratios):.3f}-{max(ratios):.3f}) | "
          f"{max(r[2] for r in rs):.2f} GB | {max(r[3] for r in rs):.2f} GB |")
PY
