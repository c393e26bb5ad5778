#!/usr/bin/env bash
# Seconds per PID step with the two student calls separate (the official code) vs one batch of 2B
# (--joint-student), interleaved, bundled teacher, L2, N = 250, batch 32, one thread. Run from anywhere after
# make build; writes its scratch runs under a temporary folder.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$(mktemp -d)"
B=${PIDISTILL:-$root/build/pidistill}; T=$root/models/fashion-mnist-ddpmpp-teacher.safetensors
for round in 1 2 3; do for mode in sep joint; do
  extra=""; [ $mode = joint ] && extra=--joint-student
  OMP_WAIT_POLICY=passive $B distill --teacher $T --loss l2 --N 250 --batch 32 --steps 7 --log-every 1 --grid-every 0 --grid-seeds 0 --threads 1 --quiet --outdir $mode-$round $extra > /dev/null 2>&1
  /usr/bin/python3 -c "
import json,glob,statistics as st
rows=[json.loads(l) for l in open(glob.glob('$mode-$round/*/stats.jsonl')[0])]
e=[r['elapsed_s'] for r in rows]; d=[b-a for a,b in zip(e,e[1:])]
print('$mode', $round, 'median s/step %.3f'%st.median(d), 'loss', rows[-1]['loss'])"
done; done
