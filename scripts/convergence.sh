#!/usr/bin/env bash
# One recipe of the convergence study in docs/RESULTS.md: distils the bundled teacher in segments that end at the
# given cumulative training minutes (each segment resumes the last checkpoint bit for bit), measures the exported
# one-call student's FD-FMNIST after each, and appends a line to docs/results/convergence.jsonl.
# Usage: scripts/convergence.sh RECIPE "10 30 60 120" -- DISTILL_OPTIONS...
#   e.g. scripts/convergence.sh paper-l2-N250 "10 30 60 120" -- --loss l2 --N 250
# Re-running continues where the last segment ended (the run folder is runs/convergence/RECIPE).
# Environment: BUILD (build) or PIDISTILL (the binary), THREADS (1), RESULTS_IMAGES (2000), BATCH (32).
set -euo pipefail
cd "$(dirname "$0")/.."
# Debian's python3-matplotlib is installed for /usr/bin/python3, which another python3 on PATH may shadow.
py=${PYTHON:-$( [[ -x /usr/bin/python3 ]] && echo /usr/bin/python3 || echo python3 )}
recipe=$1
marks=$2
[[ "${3:-}" == "--" ]] || { echo "usage: $0 RECIPE \"MINUTES...\" -- DISTILL_OPTIONS..." >&2; exit 2; }
shift 3
pidistill=${PIDISTILL:-${BUILD:-build}/pidistill}  # PIDISTILL: a fixed copy of the binary for runs that span rebuilds
threads=${THREADS:-1}
n=${RESULTS_IMAGES:-2000}
runs=runs/convergence/$recipe
ref=out/results/fmnist-test.npz
jsonl=docs/results/convergence.jsonl
teacher=models/fashion-mnist-ddpmpp-teacher.safetensors
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
mkdir -p "$runs" out/results docs/results
if [[ ! -f "$ref" ]]; then
  "$pidistill" ref --data "${FMNIST:-/usr/share/datasets/fashion-mnist}" --split t10k --pad 32 --features fmnist \
    --out "$ref" --threads "$threads"
fi
trained=$(cat "$runs/minutes.txt" 2>/dev/null || echo 0)
for mark in $marks; do
  awk -v a="$mark" -v b="$trained" 'BEGIN { exit !(a <= b) }' && continue
  segment=$(awk -v a="$mark" -v b="$trained" 'BEGIN { print a - b }')
  state=$(ls "$runs"/*/training-state-*.safetensors 2>/dev/null | sort | tail -n 1 || true)
  echo "== $recipe: train to $mark minutes (+$segment)"
  if [[ -n "$state" ]]; then
    "$pidistill" distill --resume "$state" --minutes "$segment" --threads "$threads" --quiet
  else
    "$pidistill" distill --teacher "$teacher" --batch "${BATCH:-32}" --steps 100000000 --minutes "$segment" \
      --snap-every 100 --grid-every 500 --log-every 20 --outdir "$runs" --threads "$threads" --quiet "$@"
  fi
  trained=$mark
  echo "$trained" > "$runs/minutes.txt"
  student=$(ls "$runs"/*/student-final.safetensors | tail -n 1)
  line=$("$pidistill" fid --net "$student" --ref "$ref" --features fmnist --seeds "0-$((n - 1))" --threads "$threads" \
    --grid "$runs/grid-${mark}min.png" | tail -n 1)
  echo "$line"
  # flock: several recipes run at once and each rewrites the shared file.
  flock "$jsonl.lock" python3 - "$jsonl" "$recipe" "$mark" "$student" "$line" "$*" <<'PY'
import json, struct, sys
path, recipe, minutes, student, line, options = sys.argv[1:]
with open(student, "rb") as f:  # the step the student was exported at, from its safetensors metadata
    meta = json.loads(f.read(struct.unpack("<Q", f.read(8))[0])).get("__metadata__", {})
r = json.loads(line)
row = {"recipe": recipe, "minutes": float(minutes), "steps": int(meta.get("step", -1)), "ema": meta.get("ema"),
       "fd": r["fd"], "precision": r.get("precision"), "recall": r.get("recall"), "options": options, "result": r}
rows = [json.loads(l) for l in open(path)] if __import__("os").path.exists(path) else []
rows = [x for x in rows if not (x["recipe"] == recipe and x["minutes"] == row["minutes"])] + [row]
open(path, "w").write("".join(json.dumps(x) + "\n" for x in rows))
PY
  # The pictures of docs/RESULTS.md: loss per grid bin against step, and the student's trajectory beside the teacher's.
  "$py" scripts/plot_stats.py "$(dirname "$student")/stats.jsonl" "docs/results/loss_bins-$recipe.png" \
    "$recipe: PID loss per grid bin" || true
  "$pidistill" trajectory --student "$student" --teacher "$teacher" --seeds 0-3 --threads "$threads" \
    --out "docs/results/trajectory-$recipe.png" > "$runs/trajectory-${mark}min.json" || true
done
