#!/usr/bin/env bash
# The demo `make demo` runs: distil a teacher into a one-call PID student on the CPU for a bounded time, then write
# one PNG with the teacher at 35 network calls (EDM Heun, 18 steps) and the student at 1 call, same seeds.
# Environment: DEMO_MINUTES (training budget, default 10), TEACHER (default: the bundled Fashion-MNIST teacher in
# models/, else the tiny reference network of ../shared/golden, whose images are noise-like: it is untrained),
# LPIPS_WEIGHTS (a converted VGG16+LPIPS file: the paper's lpips loss; default l2, which needs no download),
# DEMO_BATCH (default 32), THREADS (default: all cores), DEMO_WORKERS (default: THREADS or the cores).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
pidistill="$build/pidistill"
minutes=${DEMO_MINUTES:-10}
batch=${DEMO_BATCH:-32}
out=out/demo

teacher=${TEACHER:-}
if [[ -z "$teacher" ]]; then
  teacher=$(ls models/*fashion*mnist*.safetensors models/*fmnist*.safetensors 2>/dev/null | head -n 1 || true)
  if [[ -z "$teacher" ]]; then
    teacher=../shared/golden/ddpmpp_uncond_weights.safetensors
    echo "== no Fashion-MNIST teacher in models/; using the untrained reference network $teacher"
  fi
fi
loss=(--loss l2)
[[ -n "${LPIPS_WEIGHTS:-}" ]] && loss=(--loss lpips --lpips-weights "$LPIPS_WEIGHTS")
threads=()
[[ -n "${THREADS:-}" ]] && threads=(--threads "$THREADS")
# One worker thread per core (distill --workers): 2.6x the step rate of intra-op threads for this small network on
# 2 cores (docs/PERFORMANCE.md). DEMO_WORKERS=1 gives the plain path.
workers=${DEMO_WORKERS:-${THREADS:-$(nproc)}}
while (( workers > 1 && batch % workers != 0 )); do workers=$((workers - 1)); done
# DEMO_ARGS: further distill options, e.g. DEMO_ARGS="--N 18 --lr 5e-4" (a coarse grid: fewer points for the
# boundary condition to travel through in a short CPU run).
read -r -a extra <<< "${DEMO_ARGS:-}"

mkdir -p "$out"
echo "== distil $teacher for $minutes minutes (batch $batch, ${loss[*]}, $workers workers)"
start=$(date +%s)
"$pidistill" distill --teacher "$teacher" "${loss[@]}" --batch "$batch" --steps 1000000 --minutes "$minutes" \
  --snap-every 500 --grid-every 500 --log-every 20 --workers "$workers" --outdir "$out/runs" "${threads[@]}" "${extra[@]}" | tee "$out/distill.log"
run=$(ls -d "$out"/runs/*/ | sort | tail -n 1)
run=${run%/}

bundled=models/fashion-mnist-pid-student.safetensors
students=("$run/student-final.safetensors")
[[ -f "$bundled" ]] && students=("$bundled" "${students[@]}")
student_args=()
for s in "${students[@]}"; do student_args+=(--student "$s"); done
echo "== teacher (35 calls) vs ${students[*]} (1 call each), seeds 0-15"
"$pidistill" compare --teacher "$teacher" "${student_args[@]}" --seeds 0-15 --out "$out/teacher_vs_student.png" \
  "${threads[@]}"

# FD-FMNIST of each panel (the bundled classifier's features, generated images vs the 10,000 test images).
fd_images=${DEMO_FD_IMAGES:-500}
fd_summary=""
if (( fd_images > 1 )) && [[ -f models/fmnist-classifier.safetensors && -d "${FMNIST:-/usr/share/datasets/fashion-mnist}" ]]; then
  ref="$out/fmnist-test.npz"
  [[ -f "$ref" ]] || "$pidistill" ref --data "${FMNIST:-/usr/share/datasets/fashion-mnist}" --split t10k --pad 32 \
    --features fmnist --out "$ref" "${threads[@]}" > /dev/null
  fd_of() { "$pidistill" fid --ref "$ref" --features fmnist --seeds "0-$((fd_images - 1))" "${threads[@]}" "$@" 2>/dev/null |
    tail -n 1 | sed -n 's/.*"fd":\([-0-9.eE+]*\).*/\1/p'; }
  echo "== FD-FMNIST, $fd_images images each (lower is better)"
  fd_summary="FD-FMNIST ($fd_images images): teacher 35 calls $(fd_of --net "$teacher" --steps 18)"
  for s in "${students[@]}"; do fd_summary+=", $(basename "$(dirname "$s")")/$(basename "$s") 1 call $(fd_of --net "$s")"; done
  echo "$fd_summary"
fi

steps=$(tail -n 1 "$run/stats.jsonl" | sed -n 's/.*"step":\([0-9]*\).*/\1/p')
loss_value=$(tail -n 1 "$run/stats.jsonl" | sed -n 's/.*"loss":\([-0-9.eE+]*\).*/\1/p')
echo "demo: $steps steps, loss $loss_value, $(( $(date +%s) - start )) s; picture $out/teacher_vs_student.png (teacher left, then the student(s)); run $run${fd_summary:+; $fd_summary}"
