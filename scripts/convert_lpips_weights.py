#!/usr/bin/env python3
"""Combine torchvision's VGG16 ImageNet weights and piq's LPIPS linear weights into one safetensors file
for `pidistill distill --loss lpips --lpips-weights FILE`.

Inputs (download them once, on a machine with network access):
  --vgg  vgg16-397923af.pth  torchvision VGG16 IMAGENET1K_V1 state dict
                             (https://download.pytorch.org/models/vgg16-397923af.pth)
  --lin  lpips_weights.pt    piq's LPIPS weights, a list of 5 per-channel tensors
                             (https://github.com/photosynthesis-team/photosynthesis.metrics/releases/download/v0.4.0/lpips_weights.pt)
Output: features.<idx>.weight/bias for the 13 convolutions and lpips_lin.<l> [1, C, 1, 1], float32.
Needs torch (any version that can read the two files); the output is written without the safetensors package.
"""
import argparse
import json
import struct

import torch

CONV_INDEX = [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28]
LIN_CHANNELS = [64, 128, 256, 512, 512]


def lin_weights(obj):
    # piq ships a list; the original LPIPS package a state dict with lin<l>.model.1.weight.
    if isinstance(obj, dict):
        keys = [f"lin{l}.model.1.weight" for l in range(5)]
        if all(k in obj for k in keys):
            return [obj[k] for k in keys]
        return [obj[k] for k in sorted(obj)]
    return list(obj)


def write_safetensors(path, tensors):
    header, blobs, offset = {}, [], 0
    for name, t in tensors:
        data = t.detach().to(torch.float32).contiguous().numpy().tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    header["__metadata__"] = {"format": "pidistill-lpips", "source": "torchvision vgg16 + piq lpips_weights"}
    text = json.dumps(header).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--vgg", required=True, help="torchvision vgg16 state dict (.pth)")
    ap.add_argument("--lin", required=True, help="piq lpips_weights.pt")
    ap.add_argument("--out", required=True, help="output .safetensors")
    args = ap.parse_args()

    vgg = torch.load(args.vgg, map_location="cpu")
    out = []
    for idx in CONV_INDEX:
        for part in ("weight", "bias"):
            key = f"features.{idx}.{part}"
            if key not in vgg:
                raise SystemExit(f"{args.vgg}: no tensor '{key}' (expected torchvision's vgg16 state dict)")
            out.append((key, vgg[key]))
    lin = lin_weights(torch.load(args.lin, map_location="cpu"))
    if len(lin) != 5:
        raise SystemExit(f"{args.lin}: expected 5 LPIPS linear weights, found {len(lin)}")
    for l, (w, c) in enumerate(zip(lin, LIN_CHANNELS)):
        w = torch.as_tensor(w)
        if w.numel() != c:
            raise SystemExit(f"{args.lin}: weight {l} has {w.numel()} values, expected {c}")
        out.append((f"lpips_lin.{l}", w.reshape(1, c, 1, 1)))
    write_safetensors(args.out, out)
    print(f"wrote {args.out}: {len(out)} tensors")


if __name__ == "__main__":
    main()
