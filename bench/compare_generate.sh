#!/usr/bin/env bash
# Generation speed, C++ (build/bench_one_call_vs_heun, the library's generate path) vs our Python reference
# (bench/python/bench_generate.py), interleaved round by round: a PID student's one call and the teacher's Heun
# sampler (35 calls), batch-1 latency and batch-B throughput.
#   bench/compare_generate.sh [BUILD_DIR]
# Environment: TEACHER, STUDENT (the bundled ones), BATCH [64], REPEATS [5], ROUNDS [3], THREADS ["1 2"],
#              OUT [out/bench/generate], CONV [direct] (the C++ side's --conv)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
TEACHER=${TEACHER:-models/fashion-mnist-ddpmpp-teacher.safetensors}
STUDENT=${STUDENT:-models/fashion-mnist-pid-student.safetensors}
BATCH=${BATCH:-64} REPEATS=${REPEATS:-5} ROUNDS=${ROUNDS:-3} THREADS=${THREADS:-1 2}
OUT=${OUT:-out/bench/generate}
CONV=${CONV:-direct}
[ -x "$BUILD/bench_one_call_vs_heun" ] || { echo "error: $BUILD/bench_one_call_vs_heun not found; hint: make build" >&2; exit 1; }
export OMP_WAIT_POLICY=passive
mkdir -p "$OUT"
results=$OUT/results.jsonl
: > "$results"
echo "bench/compare_generate.sh $(date -u '+%Y-%m-%d %H:%M UTC') commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
echo "CPU: $(lscpu | awk -F': +' '/^Model name/ {print $2}'), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
for t in $THREADS; do
  for r in $(seq 1 "$ROUNDS"); do
    OMP_NUM_THREADS=$t "$BUILD/bench_one_call_vs_heun" "$TEACHER" "$STUDENT" "$BATCH" "$REPEATS" "$t" "$CONV" | sed "s/}$/, \"round\": $r}/" >> "$results"
    OMP_NUM_THREADS=$t /usr/bin/python3 bench/python/bench_generate.py --teacher "$TEACHER" --student "$STUDENT" \
      --batch "$BATCH" --repeats "$REPEATS" --threads "$t" | sed "s/}$/, \"round\": $r}/" >> "$results"
    echo "  threads $t round $r done (load $(cut -d' ' -f1 /proc/loadavg))"
  done
done
/usr/bin/python3 - "$results" <<'PY' | tee "$OUT/table.md"
import collections, json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
by = collections.defaultdict(list)
for r in rows:
    by[(r["what"], r["threads"], r["side"])].append(r)
print("| network | calls | threads | C++ batch-1 ms | Python batch-1 ms | C++ img/s | Python img/s | throughput ratio C++/Python (per round, median) |")
print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
for what, t in sorted({(k[0], k[1]) for k in by}, key=lambda k: (k[0] != "student", k[1])):
    c, p = by[(what, t, "cpp")], by[(what, t, "python")]
    ratios = [a["img_per_s"] / b["img_per_s"] for a, b in zip(c, p)]
    med = lambda rs, k: statistics.median(x[k] for x in rs)
    print(f"| {what} | {c[0]['calls']} | {t} | {med(c, 'batch1_ms'):.1f} | {med(p, 'batch1_ms'):.1f} | "
          f"{med(c, 'img_per_s'):.2f} | {med(p, 'img_per_s'):.2f} | {statistics.median(ratios):.3f} "
          f"({min(ratios):.2f}-{max(ratios):.2f}) |")
PY
