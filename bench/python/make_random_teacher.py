"""Writes a randomly initialised network file in our format (EDM 'model.' keys, metadata config and precond), for
benchmarks of networks we have no trained weights of. Speed does not depend on the values; EDM's init is used.

  /usr/bin/python3 bench/python/make_random_teacher.py OUT.safetensors [--preset cifar10-ddpmpp] [--seed 0]"""
import argparse
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import song_unet  # noqa: E402
import st_io  # noqa: E402

PRESETS = {"cifar10-ddpmpp": song_unet.CIFAR10_DDPMPP}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--preset", default="cifar10-ddpmpp", choices=sorted(PRESETS))
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    config = dict(PRESETS[args.preset], model_type="SongUNet")
    net = song_unet.SongUNet(**config)
    tensors = {"model." + k: v for k, v in net.state_dict().items()}
    st_io.write(args.out, tensors, {"config": json.dumps(config), "precond": "edm",
                                    "note": f"random EDM init, seed {args.seed}, for benchmarks only"})
    print(f"{args.out}: {args.preset}, {sum(p.numel() for p in net.parameters()):,} parameters")


if __name__ == "__main__":
    main()
