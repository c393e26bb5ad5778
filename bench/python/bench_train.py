"""Times the Python reference's EDM teacher-training step (EDMLoss as EDM's training loop computes it): sigma
log-normal (P_mean -1.2, P_std 1.2), weight (sigma^2 + sd^2) / (sigma sd)^2, D of the noised image, loss summed
and divided by the batch, backward, EDM's nan_to_num of the gradients, Adam (betas 0.9/0.999, eps 1e-8) with the
learning rate ramp-up, and the EMA with EDM's half-life and ramp-up. The network is the architecture of TEACHER
(its config), initialised as EDM does; images are random (speed does not depend on them).

  /usr/bin/python3 bench/python/bench_train.py --teacher FILE --batch 64 --steps 10 --warmup 2 --threads 2

Prints one JSON line: per-step seconds of the timed steps, median img/s, the process's peak RSS."""
import argparse
import copy
import json
import os
import resource
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pid_step  # noqa: E402
import song_unet  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--teacher", required=True, help="a network file whose config gives the architecture")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    _, config = pid_step.load_teacher(args.teacher)
    net = song_unet.SongUNet(**config).train().requires_grad_(True)
    ema = copy.deepcopy(net).eval().requires_grad_(False)
    opt = torch.optim.Adam(net.parameters(), lr=args.lr, betas=(0.9, 0.999), eps=1e-8)
    shape = [args.batch, config["img_channels"], config["img_resolution"], config["img_resolution"]]
    P_mean, P_std, sd = -1.2, 1.2, 0.5
    ema_halflife_kimg, ema_rampup, lr_rampup_kimg = 500, 0.05, 10000
    times, losses, cur_nimg = [], [], 0
    for i in range(args.warmup + args.steps):
        t0 = time.perf_counter()
        y = torch.randn(shape) * 0.5
        opt.zero_grad(set_to_none=True)
        rnd = torch.randn([args.batch, 1, 1, 1])
        sigma = (rnd * P_std + P_mean).exp()
        weight = (sigma ** 2 + sd ** 2) / (sigma * sd) ** 2
        n = torch.randn_like(y) * sigma
        D = song_unet.edm_denoise(net, y + n, sigma)
        loss = (weight * (D - y) ** 2).sum() / args.batch
        loss.backward()
        for g in opt.param_groups:
            g["lr"] = args.lr * min(cur_nimg / max(lr_rampup_kimg * 1000, 1e-8), 1)
        for p in net.parameters():
            if p.grad is not None:
                torch.nan_to_num(p.grad, nan=0, posinf=1e5, neginf=-1e5, out=p.grad)
        opt.step()
        cur_nimg += args.batch
        ema_nimg = min(ema_halflife_kimg * 1000, cur_nimg * ema_rampup)
        beta = 0.5 ** (args.batch / max(ema_nimg, 1e-8))
        for p_ema, p_net in zip(ema.parameters(), net.parameters()):
            p_ema.copy_(p_net.detach().lerp(p_ema, beta))
        loss_value = loss.item()
        dt = time.perf_counter() - t0
        if i >= args.warmup:
            times.append(dt)
            losses.append(loss_value)
    s = sorted(times)
    median = s[len(s) // 2] if len(s) % 2 else 0.5 * (s[len(s) // 2 - 1] + s[len(s) // 2])
    print(json.dumps({"side": "python", "threads": torch.get_num_threads(), "batch": args.batch, "step_s": times,
                      "img_per_s": args.batch / median, "loss": losses,
                      "parameters": sum(p.numel() for p in net.parameters()),
                      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


if __name__ == "__main__":
    main()
