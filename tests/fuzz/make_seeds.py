#!/usr/bin/python3
"""Writes the small seed inputs of tests/fuzz/corpus/<target>/seed-* (Debian's python3 with python3-torch,
numpy and PIL). Seeds are tiny valid files of each format, so the fuzzers start inside the parsers; inputs the
fuzzers found are added beside them under their libFuzzer names."""
import gzip, io, json, os, pickle, struct, sys, zipfile, zlib
from collections import OrderedDict

import numpy as np
import torch
from PIL import Image

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
# The hostile-input sweep's builders of the formats (one place for the safetensors layout).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "hostile"))
from sweep import safetensors  # noqa: E402


def put(target, name, data):
    d = os.path.join(root, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)


config = json.dumps({"model_type": "SongUNet", "img_resolution": 8, "img_channels": 1, "model_channels": 4,
                     "channel_mult": [1], "num_blocks": 1, "attn_resolutions": []})
put("safetensors", "two", safetensors({"a": ("F32", [2, 2], np.arange(4, dtype="<f4").tobytes()),
                                       "b": ("I64", [1], struct.pack("<q", 7))}, {"config": config}))
put("safetensors", "empty", safetensors({}, {}))
put("safetensors", "f16", safetensors({"h": ("F16", [3], np.ones(3, dtype="<f2").tobytes()),
                                       "z": ("BF16", [0, 4], b"")}))

for method, tag in ((zipfile.ZIP_STORED, "stored"), (zipfile.ZIP_DEFLATED, "deflated")):
    b = io.BytesIO()
    with zipfile.ZipFile(b, "w", method) as z:
        z.writestr("a/data.pkl", b"hello" * 20)
        z.writestr("a/data/0", bytes(range(64)))
    put("zip", tag, b.getvalue())
b = io.BytesIO()
with zipfile.ZipFile(b, "w", zipfile.ZIP_DEFLATED, allowZip64=True) as z:
    with z.open("big", "w", force_zip64=True) as f:
        f.write(b"x" * 100)
put("zip", "zip64", b.getvalue())

sd = OrderedDict([("w", torch.arange(6, dtype=torch.float32).reshape(2, 3)), ("b", torch.ones(2, dtype=torch.float64)),
                  ("i", torch.tensor([1, 2], dtype=torch.int64)), ("t", torch.arange(6.0).reshape(2, 3).t())])
for tag, kw in (("zip", {}), ("legacy", {"_use_new_zipfile_serialization": False})):
    b = io.BytesIO()
    torch.save(sd, b, **kw)
    put("torch_pickle", tag, b.getvalue())
b = io.BytesIO()
torch.save({"net": {"a": torch.zeros(1)}, "step": 5, "names": ["x", ("y", 1.5)], "flag": True}, b)
put("torch_pickle", "nested", b.getvalue())
put("torch_pickle", "plain", pickle.dumps({"a": [1, 2.5, "s", None, True], "b": (b"\x00\x01", {1, 2})}, protocol=2))
put("torch_pickle", "proto4", pickle.dumps(OrderedDict(k=list(range(10))), protocol=4))

for dtype in ("<f8", "<f4", "<i8", "u1", "?"):
    b = io.BytesIO()
    np.save(b, np.arange(6).astype(dtype).reshape(2, 3))
    put("npz", "npy" + dtype.replace("<", "").replace("?", "b1"), b.getvalue())
b = io.BytesIO()
np.save(b, np.asfortranarray(np.arange(6.0).reshape(2, 3)))
put("npz", "npy-fortran", b.getvalue())
b = io.BytesIO()
np.savez(b, mu=np.zeros(3), sigma=np.eye(3))
put("npz", "npz", b.getvalue())
b = io.BytesIO()
np.savez_compressed(b, mu=np.zeros(3))
put("npz", "npz-compressed", b.getvalue())

images = bytes((i * 7) % 256 for i in range(2 * 6 * 6))
idx = struct.pack(">IIII", 0x803, 2, 6, 6) + images
put("idx", "raw", idx)
put("idx", "gz", gzip.compress(idx))

put("cifar", "two", bytes([3]) + bytes(range(256)) * 12 + bytes([9]) + bytes(3072))

for mode, tag in (("L", "gray"), ("RGB", "rgb"), ("RGBA", "rgba")):
    img = Image.new(mode, (4, 4))
    img.putpixel((1, 2), (200,) * len(mode) if mode != "L" else 200)
    b = io.BytesIO()
    img.save(b, "PNG")
    put("image", "png-" + tag, b.getvalue())
for tag in ("gray", "rgb"):
    img = Image.new("L" if tag == "gray" else "RGB", (8, 8), 128 if tag == "gray" else (10, 200, 30))
    b = io.BytesIO()
    img.save(b, "JPEG", quality=80)
    put("image", "jpeg-" + tag, b.getvalue())

put("config_json", "ddpmpp", config.encode())
put("config_json", "ncsnpp", json.dumps({"model_type": "SongUNet", "img_resolution": 8, "model_channels": 4,
                                         "channel_mult": [1, 2], "embedding_type": "fourier",
                                         "channel_mult_noise": 2, "encoder_type": "residual",
                                         "decoder_type": "skip", "resample_filter": [1, 3, 3, 1]}).encode())
put("config_json", "adm", json.dumps({"model_type": "DhariwalUNet", "img_resolution": 8, "model_channels": 8,
                                      "channel_mult": [1, 2], "num_blocks": 1, "attn_resolutions": [4],
                                      "label_dim": 10, "use_fp16": False, "sigma_data": 0.5}).encode())
# The size bombs of issue 12, kept as regression inputs: a stride-0 view of one stored float claiming 300M
# elements, a zip whose directory claims ~4 GiB for a small deflated record, a config asking for a 4096-channel
# network.
b = io.BytesIO()
torch.save({"w": torch.zeros(1).expand(300000000)}, b)
put("torch_pickle", "bomb-stride0", b.getvalue())
b = io.BytesIO()
with zipfile.ZipFile(b, "w", zipfile.ZIP_DEFLATED) as z:
    z.writestr("a/data.pkl", b"\x80\x02}q\x00." * 4)
bomb = bytearray(b.getvalue())
central = bomb.find(b"PK\x01\x02")
bomb[central + 24:central + 28] = struct.pack("<I", 0xFFFFFFFE)
put("zip", "bomb-4gib", bytes(bomb))
put("torch_pickle", "bomb-4gib", bytes(bomb))
huge = json.dumps({"model_channels": 4096, "channel_mult": [1, 2, 2, 2], "num_blocks": 4})
put("config_json", "bomb-4096", huge.encode())
put("safetensors", "bomb-config-only", safetensors({}, {"config": huge}))
# Deep nesting: a shape nested 20,000 arrays deep before another key (an ordered_json object copies its values
# recursively when it grows: a stack overflow under ASan), and a config value nested as deep.
deep = "[" * 20000 + "]" * 20000
h = ('{"x":{"dtype":"F32","shape":[' + deep + '],"data_offsets":[0,4]}}').encode()
put("safetensors", "bomb-deep-shape", struct.pack("<Q", len(h)) + h + bytes(4))
put("config_json", "bomb-deep", ('{"channel_mult":' + deep + ',"model_channels":8}').encode())
print("seeds written under", root)
