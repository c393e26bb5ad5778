"""Generation speed of the Python reference: a PID student's one call, x_theta(z, 0.002), against the teacher's
EDM Heun sampler (18 steps, 35 calls, float64 state as EDM's generate.py keeps it), batch-1 latency and batch-B
throughput. One JSON line per network, like bench/bench_one_call_vs_heun.cpp.

  /usr/bin/python3 bench/python/bench_generate.py --teacher FILE --student FILE --batch 64 --repeats 5 --threads 1"""
import argparse
import json
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pid_step  # noqa: E402
import song_unet  # noqa: E402


@torch.no_grad()
def heun(net, z, num_steps=18, sigma_min=0.002, sigma_max=80.0, rho=7.0):
    i = torch.arange(num_steps, dtype=torch.float64)
    t = (sigma_max ** (1 / rho) + i / (num_steps - 1) * (sigma_min ** (1 / rho) - sigma_max ** (1 / rho))) ** rho
    t = torch.cat([t, torch.zeros(1, dtype=torch.float64)])
    x = z.to(torch.float64) * t[0]
    for k in range(num_steps):
        d = (x - song_unet.edm_denoise(net, x, t[k]).to(torch.float64)) / t[k]
        x_next = x + (t[k + 1] - t[k]) * d
        if k < num_steps - 1:
            d2 = (x_next - song_unet.edm_denoise(net, x_next, t[k + 1]).to(torch.float64)) / t[k + 1]
            x_next = x + (t[k + 1] - t[k]) * (0.5 * d + 0.5 * d2)
        x = x_next
    return x


@torch.no_grad()
def one_call(net, z):
    return pid_step.student(net, z, torch.full((z.shape[0],), 0.002))


def median_seconds(fn, z, repeats):
    fn(z)  # warm-up
    s = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn(z)
        s.append(time.perf_counter() - t0)
    return statistics.median(s)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--teacher", required=True)
    ap.add_argument("--student", required=True)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    for what, path, calls in (("student", args.student, 1), ("teacher", args.teacher, 35)):
        net, config = pid_step.load_teacher(path)
        fn = (lambda z, n=net: one_call(n, z)) if what == "student" else (lambda z, n=net: heun(n, z))
        shape = lambda b: (b, config["img_channels"], config["img_resolution"], config["img_resolution"])  # noqa: E731
        one = median_seconds(fn, torch.randn(shape(1)), args.repeats * 4 if what == "student" else args.repeats)
        many = median_seconds(fn, torch.randn(shape(args.batch)), args.repeats if what == "student" else 1)
        print(json.dumps({"side": "python", "what": what, "calls": calls, "threads": torch.get_num_threads(),
                          "batch1_ms": one * 1e3, "batch": args.batch, "img_per_s": args.batch / many}), flush=True)


if __name__ == "__main__":
    main()
