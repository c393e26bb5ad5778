"""Times the Python reference's PID step: the student initialised from TEACHER, batch B, L2, RAdam, three EMAs.

  /usr/bin/python3 bench/python/bench_pid.py --teacher FILE --batch 32 --steps 5 --warmup 1 --threads 1

Prints one JSON line: per-step seconds of the timed steps, median img/s, the process's peak RSS so far."""
import argparse
import json
import os
import resource
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pid_step  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--teacher", required=True)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=5, help="timed steps")
    ap.add_argument("--warmup", type=int, default=1, help="untimed steps first")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--N", type=int, default=250)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--loss", default="l2", choices=["l2", "lpips"])
    ap.add_argument("--channels-last", action="store_true", help="networks and latents in NHWC (a variant)")
    ap.add_argument("--lpips", help="VGG16 + LPIPS weights file (our combined format), for --loss lpips")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    teacher, config = pid_step.load_teacher(args.teacher)
    lpips = None
    if args.loss == "lpips":
        import lpips_vgg
        lpips = lpips_vgg.Lpips(args.lpips).eval().requires_grad_(False)
    trainer = pid_step.PidTrainer(teacher, config, args.batch, N=args.N, seed=args.seed, distance=args.loss,
                                  lpips=lpips, channels_last=args.channels_last)
    times, losses, loss_all = [], [], []
    for i in range(args.warmup + args.steps):
        t0 = time.perf_counter()
        loss, _, _ = trainer.step()
        dt = time.perf_counter() - t0
        loss_all.append(loss)
        if i >= args.warmup:
            times.append(dt)
            losses.append(loss)
    s = sorted(times)
    median = s[len(s) // 2] if len(s) % 2 else 0.5 * (s[len(s) // 2 - 1] + s[len(s) // 2])
    print(json.dumps({"side": "python", "threads": torch.get_num_threads(), "batch": args.batch,
                      "step_s": times, "img_per_s": args.batch / median, "loss": losses, "loss_all": loss_all,
                      "parameters": sum(p.numel() for p in trainer.params),
                      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


if __name__ == "__main__":
    main()
