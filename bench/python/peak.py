"""What one core of this CPU reaches on large dense kernels through the same LibTorch: fp32 and bf16 matrix product
and 3x3 convolution (128 channels, batch 64, 32x32), best of several repetitions. A practical ceiling next to the
theoretical peak (cores x GHz x FLOPs per cycle).

  /usr/bin/python3 bench/python/peak.py [--threads 1] [--reps 5]"""
import argparse
import json
import time

import torch
import torch.nn.functional as Fn


def best(fn, reps):
    fn()
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return min(ts)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    out = {"threads": args.threads}
    n = 2048
    for dt in (torch.float32, torch.bfloat16):
        a, b = torch.randn(n, n).to(dt), torch.randn(n, n).to(dt)
        s = best(lambda: a @ b, args.reps)
        out[f"matmul_{n}_{str(dt)[6:]}_gflops"] = 2 * n ** 3 / s / 1e9
        x, w = torch.randn(64, 128, 32, 32).to(dt), torch.randn(128, 128, 3, 3).to(dt)
        with torch.no_grad():
            s = best(lambda: Fn.conv2d(x, w, padding=1), args.reps)
        out[f"conv3x3_128ch_b64_{str(dt)[6:]}_gflops"] = 2 * 64 * 32 * 32 * 128 * 128 * 9 / s / 1e9
    print(json.dumps(out))


if __name__ == "__main__":
    main()
