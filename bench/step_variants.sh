#!/usr/bin/env bash
# Seconds per PID step for several option sets of `pidistill distill`, interleaved round by round so that a noisy
# machine hits all alike: median of the step times after the first, and the loss after the last step.
#   bench/step_variants.sh [ROUNDS] -- "" "--joint-student" "--precision bf16-teacher"
# Environment: PIDISTILL (default build/pidistill), TEACHER (the bundled one), BATCH (32), STEPS (7), THREADS (1).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
rounds=${1:-3}
[[ "${2:-}" == "--" ]] || { echo "usage: $0 ROUNDS -- \"OPTIONS\"..." >&2; exit 2; }
shift 2
bin=${PIDISTILL:-$root/build/pidistill}
teacher=${TEACHER:-$root/models/fashion-mnist-ddpmpp-teacher.safetensors}
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
echo "$(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%F)"
for round in $(seq "$rounds"); do
  v=0
  for options in "$@"; do
    v=$((v + 1))
    out="$scratch/r$round-v$v"
    # shellcheck disable=SC2086  # the options are words
    OMP_WAIT_POLICY=passive "$bin" distill --teacher "$teacher" --loss l2 --N 250 --batch "${BATCH:-32}" \
      --steps "${STEPS:-7}" --log-every 1 --grid-every 0 --grid-seeds 0 --threads "${THREADS:-1}" --quiet \
      --outdir "$out" $options > /dev/null
    /usr/bin/python3 - "$out" "$round" "${options:-(fp32, two calls)}" <<'PY'
import glob, json, statistics, sys
out, rnd, label = sys.argv[1:]
rows = [json.loads(l) for l in open(glob.glob(out + "/*/stats.jsonl")[0])]
e = [r["elapsed_s"] for r in rows]
steps = [b - a for a, b in zip(e, e[1:])]
print(f"round {rnd}  {label:32s} median {statistics.median(steps):6.3f} s/step  loss {rows[-1]['loss']:.6f}")
PY
  done
done
