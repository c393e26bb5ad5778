"""The fp32 PID loss (L2, the paper's N = 250 grid) of student files on fixed held-out draws: how well a student
solves the teacher's ODE, whatever precision it was trained in (a bf16 run logs its loss as computed in bf16).

  /usr/bin/python3 bench/python/eval_pid_loss.py --teacher TEACHER STUDENT... [--batches 8 --batch 32 --seed 12345]

Prints one JSON line per student: its mean loss over the batches (the same z and grid indices for every student)."""
import argparse
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pid_step  # noqa: E402
import song_unet  # noqa: E402
import st_io  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--teacher", required=True)
    ap.add_argument("students", nargs="+")
    ap.add_argument("--batches", type=int, default=8)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--N", type=int, default=250)
    ap.add_argument("--seed", type=int, default=12345)
    args = ap.parse_args()
    teacher, config = pid_step.load_teacher(args.teacher)
    shape = [args.batch, config["img_channels"], config["img_resolution"], config["img_resolution"]]
    for path in args.students:
        tensors, _ = st_io.read(path)
        F = song_unet.SongUNet(**dict(config, dropout=0))
        song_unet.load_state(F, tensors, path)
        F.eval()
        g = torch.Generator().manual_seed(args.seed)
        losses = []
        with torch.no_grad():
            for _ in range(args.batches):
                z = torch.randn(shape, generator=g)
                idx = torch.randint(0, args.N, (args.batch,), generator=g)
                losses.append(pid_step.pid_loss(F, teacher, z, idx, args.N)["loss"].mean().item())
        print(json.dumps({"student": path, "pid_loss_fp32": sum(losses) / len(losses), "images": args.batches * args.batch}))


if __name__ == "__main__":
    main()
