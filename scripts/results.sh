#!/usr/bin/env bash
# Regenerates docs/RESULTS.md: FD-FMNIST (features of the bundled Fashion-MNIST classifier) against the 10,000
# test images for the training set (the floor), the bundled teacher with EDM's Heun and Euler samplers at several
# network-call budgets, and every PID student we have (models/*student*.safetensors, the last `make demo` run).
# Usage: scripts/results.sh [BUILD]   Environment: RESULTS_IMAGES (generated images per row, default 2000),
# THREADS (CPU threads), FMNIST (the dataset folder), ONLY_STUDENTS=1 (keep the teacher rows already measured).
set -euo pipefail
cd "$(dirname "$0")/.."
# Debian's python3-matplotlib is installed for /usr/bin/python3, which another python3 on PATH may shadow.
py=${PYTHON:-$( [[ -x /usr/bin/python3 ]] && echo /usr/bin/python3 || echo python3 )}
build=${1:-build}
pidistill="$build/pidistill"
data=${FMNIST:-/usr/share/datasets/fashion-mnist}
n=${RESULTS_IMAGES:-2000}
seeds="0-$((n - 1))"
teacher=models/fashion-mnist-ddpmpp-teacher.safetensors
docs=docs/results
work=out/results
mkdir -p "$docs" "$work"
threads=()
[[ -n "${THREADS:-}" ]] && threads=(--threads "$THREADS")
jsonl="$docs/results.jsonl"
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}  # spinning OpenMP threads slow a shared machine 10-100x

ref="$work/fmnist-test.npz"
if [[ ! -f "$ref" ]]; then
  echo "== reference: the 10,000 Fashion-MNIST test images, padded to 32x32 as the teacher's training set"
  "$pidistill" ref --data "$data" --split t10k --pad 32 --features fmnist --out "$ref" "${threads[@]}"
fi

# row NAME KIND -- fid options: measures one row and appends {"row", "kind", "result"} to results.jsonl.
row() {
  local name=$1 kind=$2
  shift 3
  echo "== $name"
  local line
  line=$("$pidistill" fid --ref "$ref" --features fmnist "${threads[@]}" "$@" | tail -n 1)
  echo "$line"
  python3 - "$jsonl" "$name" "$kind" "$line" <<'PY'
import json, sys
path, name, kind, line = sys.argv[1:]
rows = []
try:
    rows = [json.loads(l) for l in open(path) if l.strip()]
except FileNotFoundError:
    pass
rows = [r for r in rows if r["row"] != name] + [{"row": name, "kind": kind, "result": json.loads(line)}]
open(path, "w").write("".join(json.dumps(r) + "\n" for r in rows))
PY
}

if [[ -z "${ONLY_STUDENTS:-}" ]]; then
  "$pidistill" ref --data "$data" --split train --pad 32 --max "$n" --features fmnist --out "$work/fmnist-train.npz" \
    "${threads[@]}" > /dev/null
  row "training set (first $n images)" floor -- --stats "$work/fmnist-train.npz"
  for steps in 2 4 8 18; do
    row "teacher Euler $steps calls" teacher-euler -- --net "$teacher" --solver euler --steps "$steps" --seeds "$seeds" \
      --grid "$docs/grid-teacher-euler-$steps.png"
  done
  for steps in 2 3 5 9 18; do
    row "teacher Heun $((2 * steps - 1)) calls" teacher-heun -- --net "$teacher" --solver heun --steps "$steps" \
      --seeds "$seeds" --grid "$docs/grid-teacher-heun-$((2 * steps - 1)).png"
  done
fi
for student in models/*student*.safetensors out/demo/runs/*/student-final.safetensors; do
  [[ -f "$student" ]] || continue
  name=$(basename "$(dirname "$student")")/$(basename "$student" .safetensors)
  [[ "$student" == models/* ]] && name=$(basename "$student" .safetensors)
  row "student $name" student -- --net "$student" --seeds "$seeds" --grid "$docs/grid-${name//\//-}.png"
done

"$py" scripts/results_report.py "$jsonl" docs/RESULTS.md "$(lscpu | sed -n 's/^Model name: *//p' | head -n 1)"
echo "== wrote docs/RESULTS.md"
