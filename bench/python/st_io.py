"""Read and write .safetensors files with numpy only: 8-byte little-endian header length, JSON header, raw bytes."""
import json
import struct

import numpy as np
import torch

_DTYPES = {"F32": np.float32, "F64": np.float64, "I64": np.int64, "F16": np.float16, "I32": np.int32}
_NAMES = {np.dtype(v): k for k, v in _DTYPES.items()}


def read(path):
    """Returns (tensors, metadata): tensors maps name -> torch.Tensor (CPU, own memory), metadata a dict of str."""
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        data = f.read()
    metadata = header.pop("__metadata__", {})
    tensors = {}
    for name, info in header.items():
        if info["dtype"] not in _DTYPES:
            raise ValueError(f"{path}: tensor '{name}' has dtype {info['dtype']} (this reader knows {sorted(_DTYPES)})")
        begin, end = info["data_offsets"]
        a = np.frombuffer(data[begin:end], dtype=_DTYPES[info["dtype"]]).reshape(info["shape"])
        tensors[name] = torch.from_numpy(a.copy())
    return tensors, metadata


def write(path, tensors, metadata=None):
    """tensors: dict name -> torch.Tensor, written in dict order; metadata: dict str -> str."""
    header, chunks, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    for name, t in tensors.items():
        a = t.detach().cpu().contiguous().numpy()
        b = a.tobytes()
        header[name] = {"dtype": _NAMES[a.dtype], "shape": list(a.shape), "data_offsets": [offset, offset + len(b)]}
        chunks.append(b)
        offset += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in chunks:
            f.write(b)
