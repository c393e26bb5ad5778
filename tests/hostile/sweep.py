#!/usr/bin/python3
"""Hostile-input sweep (issue 12, docs/RELIABILITY.md): writes crafted bad files of every class the issue names,
each at most 1 MB, and runs the release binary's reading commands on each under a 10 s timeout, with peak RSS
measured. Counts clean one-line errors that name the file, runs that accepted the file, crashes by signal,
hangs, runs over 1 GB, and other messages (several lines, or not naming the file).

usage: tests/hostile/sweep.py [--bin build/pidistill] [--work DIR] [--jobs N] [--quick | --all-commands] [--show]
       [--json FILE]
Exits 1 when any run crashed, hung, went over the memory limit or printed a bad message.
Needs Debian's python3 with numpy, python3-torch and PIL (as tests/fuzz/make_seeds.py)."""
import argparse, gzip, io, json, os, pickle, random, resource, signal, stat, struct, subprocess, sys, time, zipfile
import zlib
from collections import Counter, OrderedDict
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
GOLDEN = os.path.join(os.path.dirname(REPO), "shared", "golden")
MAX_FILE = 1 << 20  # the issue's bound on an input file


# ---------------------------------------------------------------------------------------------------------------
# Builders of the formats, valid or not.

def safetensors(tensors, metadata=None, raw_header=None):
    """tensors: name -> (dtype, shape, bytes); raw_header overrides the JSON text."""
    header, blobs, off = {}, [], 0
    for name, (dtype, shape, raw) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    if metadata is not None:
        header["__metadata__"] = metadata
    h = raw_header if raw_header is not None else json.dumps(header).encode()
    return struct.pack("<Q", len(h)) + h + b"".join(blobs)


def st_header(text, data=b""):
    h = text.encode() if isinstance(text, str) else text
    return struct.pack("<Q", len(h)) + h + data


def torch_save(obj, legacy=False):
    b = io.BytesIO()
    torch.save(obj, b, _use_new_zipfile_serialization=not legacy)
    return b.getvalue()


def zip_bytes(entries, method=zipfile.ZIP_STORED):
    b = io.BytesIO()
    with zipfile.ZipFile(b, "w", method) as z:
        for name, data in entries:
            z.writestr(name, data)
    return b.getvalue()


def set_central_sizes(data, compressed=None, uncompressed=None, local_too=False):
    """Rewrites the sizes of the first central directory record (and of the local header)."""
    data = bytearray(data)
    c = data.find(b"PK\x01\x02")
    if compressed is not None:
        data[c + 20:c + 24] = struct.pack("<I", compressed)
    if uncompressed is not None:
        data[c + 24:c + 28] = struct.pack("<I", uncompressed)
    if local_too:
        if compressed is not None:
            data[18:22] = struct.pack("<I", compressed)
        if uncompressed is not None:
            data[22:26] = struct.pack("<I", uncompressed)
    return bytes(data)


def npy(arr):
    b = io.BytesIO()
    np.save(b, arr, allow_pickle=True)
    return b.getvalue()


def npy_header(descr, shape, fortran=False, data=b""):
    d = "{'descr': %r, 'fortran_order': %s, 'shape': %s, }" % (descr, fortran, shape)
    d = d.encode()
    pad = 64 - (10 + len(d) + 1) % 64
    d = d + b" " * pad + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(d)) + d + data


def npz(arrays, compressed=False):
    b = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(b, **arrays)
    return b.getvalue()


def npz_raw(entries):
    return zip_bytes([(n if n.endswith(".npy") else n + ".npy", d) for n, d in entries])


def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xffffffff)


def png(width, height, color=0, depth=8, idat=None, extra=b"", idat_len=None):
    sig = b"\x89PNG\r\n\x1a\n"
    ihdr = png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, depth, color, 0, 0, 0))
    if idat is None:
        channels = {0: 1, 2: 3, 6: 4, 4: 2, 3: 1}.get(color, 1)
        row = 1 + min(width, 64) * channels
        idat = zlib.compress(bytes(row * min(height, 64)))
    chunk = png_chunk(b"IDAT", idat)
    if idat_len is not None:
        chunk = struct.pack(">I", idat_len) + chunk[4:]
    return sig + ihdr + extra + chunk + png_chunk(b"IEND", b"")


def image_bytes(mode, size, fmt, **kw):
    b = io.BytesIO()
    Image.new(mode, size, 128 if mode == "L" else (10, 200, 30)).save(b, fmt, **kw)
    return b.getvalue()


def idx_images(n, rows, cols, data=None, magic=0x803):
    body = data if data is not None else bytes((i * 7) % 256 for i in range(n * rows * cols))
    return struct.pack(">IIII", magic, n, rows, cols) + body


def idx_labels(n, data=None):
    return struct.pack(">II", 0x801, n) + (data if data is not None else bytes(i % 10 for i in range(n)))


def nested_pickle(depth, kind):
    """A pickle nested `depth` deep, written opcode by opcode (pickle.dumps would recurse)."""
    out = [b"\x80\x02"]
    if kind == "list":
        out.append(b"]" * depth)  # EMPTY_LIST ... then APPENDs
        out.append(b"a" * (depth - 1))
    elif kind == "dict":
        for _ in range(depth):
            out.append(b"}X\x01\x00\x00\x00k")  # EMPTY_DICT, key 'k'
        out.append(b"N")
        out.append(b"s" * depth)
    elif kind == "tuple":
        out.append(b"N")
        out.append(b"\x85" * depth)  # TUPLE1 around the previous value
    elif kind == "mark":
        out.append(b"(" * depth)
        out.append(b"t" * depth)
    out.append(b".")
    return b"".join(out)


def zip_pt(pickle_bytes, extra=()):
    return zip_bytes([("archive/data.pkl", pickle_bytes), ("archive/version", b"3\n")] + list(extra))


def truncations(data, count, rng):
    points = sorted({0, 1, 4, 7, 8, 9, 16, 64, len(data) // 2, len(data) - 1} |
                    {rng.randrange(len(data)) for _ in range(count)})
    return [(p, data[:p]) for p in points if p < len(data)]


def flips(data, count, rng, first=None):
    out = []
    limit = min(len(data), first) if first else len(data)
    for i in range(count):
        d = bytearray(data)
        for _ in range(rng.randint(1, 4)):
            pos = rng.randrange(limit)
            d[pos] = rng.choice([0, 0xff, d[pos] ^ (1 << rng.randrange(8)), ord("9"), ord("[")])
        out.append((i, bytes(d)))
    return out


# ---------------------------------------------------------------------------------------------------------------
# The crafted inputs. Each case: (class, name, kind, bytes or a special maker). kind picks the commands.

class Case:
    def __init__(self, cls, name, kind, data=None, make=None, as_nobody=False):
        self.cls, self.name, self.kind, self.data, self.make, self.as_nobody = cls, name, kind, data, make, as_nobody
        self.path = None


def tiny_config(**over):
    c = {"model_type": "SongUNet", "img_resolution": 8, "img_channels": 1, "model_channels": 4,
         "channel_mult": [1], "num_blocks": 1, "attn_resolutions": []}
    c.update(over)
    return c


def deep(depth, open_="[", close="]"):
    return open_ * depth + close * depth


def deep_object(depth):
    return '{"a":' * depth + "1" + "}" * depth


def cases_safetensors(rng):
    c = []
    f32 = np.arange(4, dtype="<f4").tobytes()
    for depth in (65, 1000, 100000, 400000):
        c.append(("deep-shape-%d" % depth, st_header('{"x":{"dtype":"F32","shape":' + deep(depth) +
                                                     ',"data_offsets":[0,4]}}', f32)))
        c.append(("deep-shape-then-key-%d" % depth, st_header('{"x":{"shape":[' + deep(depth) +
                                                              '],"dtype":"F32","data_offsets":[0,4]}}', f32)))
        c.append(("deep-offsets-%d" % depth, st_header('{"x":{"dtype":"F32","shape":[1],"data_offsets":' +
                                                       deep(depth) + '}}', f32)))
        c.append(("deep-metadata-%d" % depth, st_header('{"__metadata__":{"config":' + deep(depth) + '}}')))
        if depth <= 100000:  # 6 bytes a level: the 1 MB bound
            c.append(("deep-object-%d" % depth, st_header('{"x":' + deep_object(depth) + '}')))
            c.append(("deep-dtype-%d" % depth, st_header('{"x":{"dtype":' + deep_object(depth) +
                                                         ',"shape":[1],"data_offsets":[0,4]}}', f32)))
    for n in (0, 1, 7):
        c.append(("short-%d" % n, b"\x10" * n))
    for hl in (0, 1, 2**63, 2**64 - 1, 100 * 2**20 + 1, 200, 2**31):
        c.append(("header-length-%d" % hl, struct.pack("<Q", hl) + b'{"a":1}' + bytes(40)))
    for text in ("garbage", "null", "[]", "1", '"str"', "[" * 50, '{"a":', "{}x", '\ufeff{}', '{"a":NaN}',
                 '{"x":{}}', '{"x":null}', '{"x":[]}', '{"x":1}', '{"__metadata__":[]}', '{"__metadata__":{"a":1}}',
                 '{"__metadata__":{"a":{"b":"c"}}}', '{"x":{"dtype":"F32","shape":[1]}}',
                 '{"x":{"dtype":"F32","data_offsets":[0,4]}}', '{"x":{"shape":[1],"data_offsets":[0,4]}}'):
        c.append(("header-%s" % text.encode().hex()[:24], st_header(text, f32)))
    c.append(("header-nul", st_header(b'{"x\x00y":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}', f32)))
    c.append(("header-bad-utf8", st_header(b'{"\xff\xfe":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}', f32)))
    for dtype in ("F128", "", "f32", "U8 ", "BOOL", "F8_E4M3", "C64", 5, None, ["F32"]):
        c.append(("dtype-%r" % (dtype,), safetensors({"x": (dtype, [1], f32[:4])})))
    shapes = ([-1], [1.5], ["1"], [2**40, 2**40], [2**63 - 1], [2**62, 4], [0, 2**63 - 1], [2**32] * 8,
              [1] * 10000, [3], [], [0], None, {"a": 1}, [True])
    for i, shape in enumerate(shapes):
        c.append(("shape-%d" % i, st_header(json.dumps({"x": {"dtype": "F32", "shape": shape,
                                                            "data_offsets": [0, 4]}}), f32)))
    offs = ([4, 0], [0, 5], [0, 2**64 - 1], [2**63, 2**63 + 4], [-4, 0], [0.5, 4.5], [0], [0, 4, 8], "04",
            [0, 2**31], [2**40, 2**40 + 4])
    for i, off in enumerate(offs):
        c.append(("offsets-%d" % i, st_header(json.dumps({"x": {"dtype": "F32", "shape": [1],
                                                               "data_offsets": off}}), f32)))
    c.append(("overlap", st_header(json.dumps({"x": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
                                               "y": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}), f32)))
    c.append(("gap", st_header(json.dumps({"x": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}),
                               f32 + f32)))
    c.append(("duplicate-key", st_header('{"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},'
                                         '"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}', f32)))
    # Names and metadata that try to forge lines or send terminal escapes.
    for i, name in enumerate(("a\nerror: forged", "\x1b[31mred\x1b[0m", "a\rb", "\x1b]0;title\x07", "",
                              "x" * 200000, "\u202eevil", "\x00")):
        c.append(("name-%d" % i, safetensors({name: ("F32", [1], f32[:4])}, {"k\n": "v\x1b[2J\nerror: x"})))
    # Network configs: invalid, deep, huge, wrong types.
    configs = ["not json", deep(100000), "[]", "null", json.dumps(tiny_config(model_channels=4096,
               channel_mult=[1, 2, 2, 2], num_blocks=4)), json.dumps(tiny_config(model_channels=2**31)),
               json.dumps(tiny_config(num_blocks=10**6)), json.dumps(tiny_config(channel_mult=[1024] * 8)),
               json.dumps(tiny_config(channel_mult=[1] * 5000)), json.dumps(tiny_config(img_resolution=2**20)),
               json.dumps(tiny_config(img_resolution=-8)), json.dumps(tiny_config(img_channels=2**30)),
               json.dumps(tiny_config(label_dim=2**40)), json.dumps(tiny_config(attn_resolutions=list(range(10**5)))),
               json.dumps(tiny_config(model_type="Evil")), json.dumps(tiny_config(model_channels="4")),
               json.dumps(tiny_config(channel_mult=[])), json.dumps(tiny_config(resample_filter=[1] * 10000)),
               json.dumps(tiny_config(dropout=float("nan"))), json.dumps(tiny_config(img_resolution=7)),
               json.dumps({"model_type": "DhariwalUNet", "img_resolution": 64, "model_channels": 65536,
                           "channel_mult": [1, 2, 3, 4]}),
               json.dumps(tiny_config(channel_mult_emb=1024, channel_mult_noise=1024)),
               json.dumps(tiny_config(augment_dim=2**24))]
    for i, cfg in enumerate(configs):
        c.append(("config-%d" % i, safetensors({}, {"config": cfg})))
        c.append(("config-%d-precond" % i, safetensors({"x": ("F32", [1], f32[:4])},
                                                       {"config": cfg, "precond": "evil"})))
    c.append(("checkpoint-bogus", safetensors({"x": ("F32", [1], f32[:4])},
                                              {"pidistill_checkpoint": "pid_distill", "options": deep(50000)})))
    c.append(("checkpoint-train", safetensors({"x": ("F32", [1], f32[:4])},
                                              {"pidistill_checkpoint": "edm_train", "options": "{}"})))
    c.append(("checkpoint-json", safetensors({}, {"pidistill_checkpoint": "pid_distill",
                                                  "options": json.dumps({"teacher": "/dev/zero", "steps": -1})})))
    # Mutations of a real network file (the golden DDPM++ weights, 772 KB).
    real = os.path.join(GOLDEN, "ddpmpp_uncond_weights.safetensors")
    if os.path.exists(real):
        data = open(real, "rb").read()
        hl = struct.unpack("<Q", data[:8])[0]
        for p, d in truncations(data, 8, rng):
            c.append(("real-truncated-%d" % p, d))
        for i, d in flips(data, 16, rng, first=8 + hl):
            c.append(("real-header-flip-%d" % i, d))
    return c


def cases_pickle(rng):
    c = []
    for kind in ("list", "dict", "tuple", "mark"):
        for depth in (1000, 100000, 300000):
            p = nested_pickle(depth, kind)
            if len(p) < MAX_FILE - 200:
                c.append(("nested-%s-%d.pt" % (kind, depth), zip_pt(p)))
                c.append(("nested-%s-%d-plain.pt" % (kind, depth), p))
    # A list that contains itself (memo), and one whose walk fans out.
    c.append(("self-list.pt", zip_pt(b"\x80\x02]q\x00h\x00a.")))
    c.append(("fan.pt", zip_pt(b"\x80\x02]q\x00" + b"h\x00h\x00\x86q\x00" * 60 + b".")))
    for mod, name in (("os", "system"), ("posix", "system"), ("builtins", "eval"), ("subprocess", "Popen"),
                      ("torch._utils", "_rebuild_evil"), ("collections", "Evil"), ("__builtin__", "exec")):
        p = b"\x80\x02c" + mod.encode() + b"\n" + name.encode() + b"\nX\x02\x00\x00\x00id\x85R."
        c.append(("global-%s-%s.pt" % (mod, name), zip_pt(p)))
        c.append(("global-%s-%s-plain.pt" % (mod, name), p))
    for opcode in (b"\xff", b"\x94", b"h\x63", b"g999\n", b"j\x00\x00\x00\x7f", b"R", b"b", b"e", b"s", b"0",
                   b"2", b"\x8e\xff\xff\xff\xff\xff\xff\xff\x7f", b"B\xff\xff\xff\x7f", b"T\xff\xff\xff\x7f",
                   b"\x8d\xff\xff\xff\xff\xff\xff\xff\x7f", b"\x8a\xff" + b"\x01" * 255, b"\x8b\xff\xff\xff\x7f",
                   b"I99999999999999999999999999\n", b"F1e999\n", b"P1\n", b"Q", b"\x88" * 10):
        p = b"\x80\x02" + opcode + b"."
        c.append(("opcode-%s.pt" % opcode[:8].hex(), zip_pt(p)))
    # Tensors that claim more than their storage: stride 0, overlapping, offsets, huge sizes.
    t = torch.zeros(3)
    views = {"stride0": t[:1].expand(300000000), "stride0-2d": torch.zeros(1, 1).expand(100000, 100000),
             "offset": t[2:]}
    for name, v in views.items():
        c.append(("view-%s.pt" % name, torch_save({"w": v})))
        c.append(("view-%s-legacy.pt" % name, torch_save({"w": v}, legacy=True)))
    base = torch_save({"w": torch.zeros(2, 3)})
    # Rewrite the pickle's size tuple (2, 3) and stride (3, 1) in place: K\x02K\x03 -> huge values.
    for i, (old, new) in enumerate(((b"K\x02K\x03\x86", b"J\x00\x00\x00\x40J\x00\x00\x00\x40\x86"),
                                    (b"K\x03K\x01\x86", b"K\x00K\x00\x86"),
                                    (b"K\x03K\x01\x86", b"J\xff\xff\xff\x7fK\x01\x86"),
                                    (b"K\x02K\x03\x86", b"J\xff\xff\xff\xffK\x03\x86"))):
        pkl_at = base.find(b"\x80\x02")
        if base.find(old) >= 0:
            data = bytearray(base)
            # Re-zip with the edited pickle (the zip records hold CRCs and sizes).
            with zipfile.ZipFile(io.BytesIO(base)) as z:
                entries = [(n, z.read(n)) for n in z.namelist()]
            entries = [(n, d.replace(old, new, 1) if n.endswith("data.pkl") else d) for n, d in entries]
            c.append(("view-edited-%d.pt" % i, zip_bytes(entries)))
    # Zip claimed-size bombs and broken directories.
    pk = zip_pt(b"\x80\x02}q\x00.")
    for i, (comp, unc, local) in enumerate(((None, 0xFFFFFFFE, False), (0xFFFFFFF0, None, False),
                                            (0xFFFFFFF0, 0xFFFFFFF0, True), (None, 0xFFFFFFFF, True),
                                            (0, 0, True))):
        c.append(("zip-claims-%d.pt" % i, set_central_sizes(pk, comp, unc, local)))
    dz = zip_bytes([("archive/data.pkl", b"\x80\x02}q\x00." * 50), ("archive/data/0", bytes(4096))],
                   zipfile.ZIP_DEFLATED)
    for i, unc in enumerate((0xFFFFFFFE, 10**9, 4097 * 1032)):
        c.append(("zip-deflate-claims-%d.pt" % i, set_central_sizes(dz, None, unc, True)))
    # A real deflate bomb inside the 1 MB: ~1 GB of zeros as one storage record.
    comp = zeros_deflate(900)
    if len(comp) < MAX_FILE - 1000:
        bomb = io.BytesIO()
        with zipfile.ZipFile(bomb, "w") as z:
            z.writestr("archive/data.pkl", torch_pickle_for_storage(900 << 18))
        # The storage record is appended by hand (zipfile would compress 900 MB itself).
        c.append(("zip-real-deflate-bomb.pt", add_deflated_record(bomb.getvalue(), "archive/data/0", comp,
                                                                   900 << 20)))
    c.append(("zip-only-eocd.pt", b"PK\x05\x06" + bytes(18)))
    c.append(("zip-eocd-loop.pt", b"PK\x05\x06" + struct.pack("<HHHHIIH", 0, 0, 0xffff, 0xffff, 0xffffffff, 0,
                                                             0)))
    c.append(("zip64-locator.pt", b"PK\x06\x07" + struct.pack("<IQI", 0, 2**63, 1) + b"PK\x05\x06" +
              struct.pack("<HHHHIIH", 0xffff, 0xffff, 0xffff, 0xffff, 0xffffffff, 0xffffffff, 0)))
    c.append(("zip-many-entries.pt", set_eocd_count(pk, 0xffff)))
    # Real torch.save files, truncated and flipped.
    sd = OrderedDict([("w", torch.arange(6, dtype=torch.float32).reshape(2, 3)), ("b", torch.ones(2))])
    for legacy in (False, True):
        data = torch_save(sd, legacy)
        for p, d in truncations(data, 6, rng):
            c.append(("sd-%s-truncated-%d.pt" % ("legacy" if legacy else "zip", p), d))
        for i, d in flips(data, 12, rng):
            c.append(("sd-%s-flip-%d.pt" % ("legacy" if legacy else "zip", i), d))
    real = os.path.join(GOLDEN, "ddpmpp_uncond_state_dict.pt")
    if os.path.exists(real):
        data = open(real, "rb").read()
        for p, d in truncations(data, 6, rng):
            c.append(("real-sd-truncated-%d.pt" % p, d))
    real = os.path.join(GOLDEN, "edm_pickles", "edm_pkl_ddpmpp_vp.pkl")
    if os.path.exists(real):
        data = open(real, "rb").read()
        for p, d in truncations(data, 6, rng):
            c.append(("edm-truncated-%d.pkl" % p, d))
        for i, d in flips(data, 12, rng, first=4000):
            c.append(("edm-flip-%d.pkl" % i, d))
    return c


def torch_pickle_for_storage(numel):
    """The data.pkl of torch.save({'w': float tensor of numel elements}), storage key '0'."""
    b = io.BytesIO()
    torch.save({"w": torch.zeros(1)}, b)
    with zipfile.ZipFile(io.BytesIO(b.getvalue())) as z:
        name = [n for n in z.namelist() if n.endswith("data.pkl")][0]
        p = z.read(name)
    # torch.zeros(1): storage size K\x01 then size tuple K\x01\x85 -> numel.
    big = b"J" + struct.pack("<i", numel)
    return p.replace(b"K\x01K\x00K\x01\x85", big + b"K\x00" + big + b"\x85", 1)


def add_deflated_record(archive, name, comp, size):
    """Appends a deflated record with the given claimed size to a zip (rewriting its directory)."""
    src = zipfile.ZipFile(io.BytesIO(archive))
    out = io.BytesIO()
    records = []
    for info in src.infolist():
        data = src.read(info.filename)
        records.append((info.filename, 0, data, len(data), len(data), zlib.crc32(data)))
    records.append((name, 8, comp, len(comp), size, 0))
    central = b""
    for fname, method, data, csize, usize, crc in records:
        off = out.tell()
        n = fname.encode()
        out.write(struct.pack("<IHHHHHIIIHH", 0x04034b50, 20, 0, method, 0, 0, crc, csize, usize, len(n), 0) + n)
        out.write(data)
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014b50, 20, 20, 0, method, 0, 0, crc, csize, usize,
                               len(n), 0, 0, 0, 0, 0, off) + n
    cd = out.tell()
    out.write(central)
    out.write(struct.pack("<IHHHHIIH", 0x06054b50, 0, 0, len(records), len(records), len(central), cd, 0))
    return out.getvalue()


def set_eocd_count(data, count):
    data = bytearray(data)
    e = data.rfind(b"PK\x05\x06")
    data[e + 8:e + 12] = struct.pack("<HH", count, count)
    return bytes(data)


def cases_npz(rng):
    c = []
    good = npz({"mu": np.zeros(4), "sigma": np.eye(4)})
    c.append(("npz-object.npz", npz_raw([("mu", npy(np.array([{"a": 1}], dtype=object))),
                                         ("sigma", npy(np.eye(4)))])))
    for i, (descr, shape) in enumerate((("<f8", (2**62, 4)), ("<f8", (0, 2**62, 2**62)), ("<f8", (-1,)),
                                        ("<f8", (4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4,
                                                 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4)),
                                        ("<c16", (4,)), ("|O", (4,)), ("<U4", (4,)), (">f8", (4,)), ("<f8", (5,)),
                                        ("<f8", (3,)), ("<V8", (4,)), ("<f8", "(4,)"), ("<f8", (4, 4)))):
        body = bytes(8 * 4)
        c.append(("npy-mu-%d.npz" % i, npz_raw([("mu", npy_header(descr, shape, data=body)),
                                                ("sigma", npy(np.eye(4)))])))
    c.append(("npy-header-len.npz", npz_raw([("mu", b"\x93NUMPY\x01\x00\xff\xff{"), ("sigma", npy(np.eye(4)))])))
    c.append(("npy-v3.npz", npz_raw([("mu", b"\x93NUMPY\x03\x00" + struct.pack("<I", 2**31) + b"{"),
                                     ("sigma", npy(np.eye(4)))])))
    c.append(("npy-deep-header.npz", npz_raw([("mu", npy_header("<f8", deep(20000, "(", ")"))),
                                              ("sigma", npy(np.eye(4)))])))
    c.append(("npz-no-sigma.npz", npz({"mu": np.zeros(4)})))
    c.append(("npz-sigma-shape.npz", npz({"mu": np.zeros(4), "sigma": np.eye(3)})))
    c.append(("npz-nan.npz", npz({"mu": np.full(4, np.nan), "sigma": np.eye(4)})))
    c.append(("npz-inf-sigma.npz", npz({"mu": np.zeros(4), "sigma": np.full((4, 4), np.inf)})))
    c.append(("npz-not-psd.npz", npz({"mu": np.zeros(4), "sigma": -np.eye(4)})))
    c.append(("npz-features-bad.npz", npz({"mu": np.zeros(4), "sigma": np.eye(4), "features": np.zeros((2, 5))})))
    c.append(("npz-huge-dim.npz", npz({"mu": np.zeros(12000, dtype="<f4"), "sigma": np.zeros((1, 1))},
                                      compressed=True)))
    # sigma of 16384 x 16384 bytes (256 MiB) deflated into 250 KB.
    head = zlib.compressobj(9, zlib.DEFLATED, -15)
    hdr = npy_header("|u1", (16384, 16384))
    comp = head.compress(hdr) + head.flush(zlib.Z_FULL_FLUSH) + zeros_deflate(256)
    c.append(("npz-sigma-bomb.npz", add_deflated_record(npz_raw([("mu", npy(np.zeros(16384)))]), "sigma.npy", comp,
                                                        len(hdr) + (256 << 20))))
    for i, unc in enumerate((0xFFFFFFFE, 10**9)):
        c.append(("npz-claims-%d.npz" % i, set_central_sizes(good, None, unc, True)))
    for p, d in truncations(good, 6, rng):
        c.append(("npz-truncated-%d.npz" % p, d))
    for i, d in flips(good, 16, rng):
        c.append(("npz-flip-%d.npz" % i, d))
    return c


def cases_images(rng):
    """Image-folder datasets: (name, {file name: bytes})."""
    c = []
    good = image_bytes("L", (8, 8), "PNG")
    pngs = {"ihdr-huge": png(2**31 - 1, 2**31 - 1), "ihdr-wide": png(2**24, 1), "ihdr-zero": png(0, 0),
            "depth-3": png(8, 8, depth=3), "color-9": png(8, 8, color=9), "palette-no-plte": png(8, 8, color=3),
            "idat-claims-1g": png(8, 8, idat_len=10**9), "idat-garbage": png(8, 8, idat=b"\x00" * 100),
            "idat-bomb": png(8192, 8192, idat=zlib.compress(bytes(8193 * 8192), 9)),
            "chunk-claims-2g": png(8, 8, extra=struct.pack(">I", 0x7fffffff) + b"tEXt"),
            "no-iend": png(8, 8)[:-12], "signature-only": b"\x89PNG\r\n\x1a\n",
            "interlaced-huge": b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIBBBBB", 60000, 60000, 16,
                                                                                   6, 0, 0, 1))}
    for name, data in pngs.items():
        if len(data) <= MAX_FILE:
            c.append(("png-" + name, {"a.png": data}))
    jpg = image_bytes("RGB", (16, 16), "JPEG", quality=80)
    for p, d in truncations(jpg, 6, rng):
        c.append(("jpeg-truncated-%d" % p, {"a.jpg": d}))
    for i, d in flips(jpg, 16, rng):
        c.append(("jpeg-flip-%d" % i, {"a.jpg": d}))
    # A DHT segment whose counts sum past 256 (stb 2.27's heap overflow), and a SOF claiming 65535 x 65535.
    dht = b"\xff\xc4" + struct.pack(">H", 2 + 17 + 300) + b"\x00" + bytes([255] * 16) + bytes(300)
    c.append(("jpeg-dht-overflow", {"a.jpg": b"\xff\xd8" + dht + jpg[2:]}))
    sof = jpg.find(b"\xff\xc0")
    if sof > 0:
        big = bytearray(jpg)
        big[sof + 5:sof + 9] = struct.pack(">HH", 65535, 65535)
        c.append(("jpeg-sof-huge", {"a.jpg": bytes(big)}))
    for p, d in truncations(good, 6, rng):
        c.append(("png-truncated-%d" % p, {"a.png": d}))
    for i, d in flips(good, 12, rng):
        c.append(("png-flip-%d" % i, {"a.png": d}))
    c.append(("gif-named-png", {"a.png": image_bytes("L", (8, 8), "GIF")}))
    c.append(("bmp-named-png", {"a.png": image_bytes("L", (8, 8), "BMP")}))
    c.append(("text-named-png", {"a.png": b"hello"}))
    c.append(("empty-png", {"a.png": b""}))
    c.append(("mixed-sizes", {"a.png": good, "b.png": image_bytes("L", (16, 16), "PNG")}))
    c.append(("mixed-channels", {"a.png": good, "b.png": image_bytes("RGB", (8, 8), "PNG")}))
    c.append(("no-images", {"readme.txt": b"x"}))
    c.append(("newline-name", {"a\nerror: x\x1b[31m.png": b"\x89PNG\r\n\x1a\nbroken"}))
    return c


def cases_idx(rng):
    """IDX datasets: (name, {file name: bytes}) in a folder, or a single file."""
    c = []
    imgs, labs = idx_images(2, 8, 8), idx_labels(2)
    for i, (n, r, cl) in enumerate(((0, 6, 6), (2, 0, 6), (2**31, 2**31, 2**31), (2**32 - 1, 1, 1), (2, 6, 7),
                                    (1, 65535, 65535), (5, 6, 6))):
        c.append(("idx-dims-%d" % i, {"train-images-idx3-ubyte": struct.pack(">IIII", 0x803, n, r, cl) +
                                      bytes(72), "train-labels-idx1-ubyte": labs}))
    for magic in (0x801, 0x804, 0x80d, 0x903, 0, 0x08030000):
        c.append(("idx-magic-%x" % magic, {"train-images-idx3-ubyte": idx_images(2, 6, 6, magic=magic),
                                           "train-labels-idx1-ubyte": labs}))
    c.append(("idx-labels-count", {"train-images-idx3-ubyte": imgs, "train-labels-idx1-ubyte": idx_labels(3)}))
    c.append(("idx-labels-big", {"train-images-idx3-ubyte": imgs,
                                 "train-labels-idx1-ubyte": idx_labels(2, bytes([200, 255]))}))
    c.append(("idx-labels-magic", {"train-images-idx3-ubyte": imgs, "train-labels-idx1-ubyte": imgs}))
    c.append(("idx-gz-bomb", {"train-images-idx3-ubyte.gz": gzip_bomb(struct.pack(">IIII", 0x803, 1, 1, 4), 900),
                              "train-labels-idx1-ubyte": labs}))
    # An honest header: 900 MiB of zero pixels, as 1 MB of gzip.
    c.append(("idx-gz-honest-bomb", {"train-images-idx3-ubyte.gz": gzip_bomb(struct.pack(">IIII", 0x803, 1, 30720,
                                                                                         30720), 900),
                                     "train-labels-idx1-ubyte": idx_labels(1)}))
    c.append(("idx-gz-garbage", {"train-images-idx3-ubyte.gz": b"\x1f\x8b\x08\x00" + bytes(100),
                                 "train-labels-idx1-ubyte": labs}))
    c.append(("idx-gz-truncated", {"train-images-idx3-ubyte.gz": gzip.compress(imgs)[:30],
                                   "train-labels-idx1-ubyte": labs}))
    for p, d in truncations(imgs, 4, rng):
        c.append(("idx-truncated-%d" % p, {"train-images-idx3-ubyte": d, "train-labels-idx1-ubyte": labs}))
    c.append(("idx-both-gz-and-raw", {"train-images-idx3-ubyte": imgs, "train-images-idx3-ubyte.gz": b"x",
                                      "train-labels-idx1-ubyte": labs}))
    c.append(("idx-labels-dir", {"train-images-idx3-ubyte": imgs, "train-labels-idx1-ubyte/": None}))
    c.append(("idx-labels-fifo", {"train-images-idx3-ubyte": imgs, "train-labels-idx1-ubyte|": None}))
    c.append(("idx-images-zero", {"train-images-idx3-ubyte@": "/dev/zero", "train-labels-idx1-ubyte": labs}))
    return c


def zeros_deflate(megabytes):
    """A raw deflate stream of `megabytes` MiB of zeros, made from one compressed MiB repeated (a full flush
    after each resets the window, so every MiB compresses to the same bytes): seconds instead of a minute."""
    z = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = z.compress(bytes(1 << 20)) + z.flush(zlib.Z_FULL_FLUSH)
    return block * megabytes + z.flush()


def gzip_bomb(header, megabytes):
    body = zlib.compressobj(9, zlib.DEFLATED, -15)
    head = body.compress(header) + body.flush(zlib.Z_FULL_FLUSH)
    crc = zlib.crc32(header)
    zero = bytes(1 << 20)
    for _ in range(megabytes):
        crc = zlib.crc32(zero, crc)
    size = len(header) + (megabytes << 20)
    return (b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff" + head + zeros_deflate(megabytes) +
            struct.pack("<II", crc, size & 0xffffffff))


def cases_cifar(rng):
    c = []
    rec = bytes([3]) + bytes(3072)
    for i, data in enumerate((b"", rec[:100], rec + b"x", bytes([10]) + bytes(3072), bytes([255]) + bytes(3072),
                              rec * 2 + rec[:5])):
        c.append(("cifar-%d" % i, {"data_batch_1.bin": data}))
    c.append(("cifar-test-only-train", {"test_batch.bin": rec}))
    c.append(("cifar-batch-dir", {"data_batch_1.bin/": None}))
    c.append(("cifar-batch-fifo", {"data_batch_1.bin|": None}))
    c.append(("cifar-gap", {"data_batch_1.bin": rec, "data_batch_3.bin": rec}))
    return c


def cases_zip_dataset(rng):
    c = []
    good = image_bytes("L", (8, 8), "PNG")
    c.append(("zip-labels-bad.zip", zip_bytes([("00000/img0.png", good), ("dataset.json", b'{"labels": 5}')])))
    c.append(("zip-labels-deep.zip", zip_bytes([("00000/img0.png", good), ("dataset.json", deep(100000).encode())])))
    c.append(("zip-labels-huge.zip", zip_bytes([("00000/img0.png", good), ("dataset.json", json.dumps(
        {"labels": [["00000/img0.png", 2**62]]}).encode())])))
    c.append(("zip-labels-neg.zip", zip_bytes([("00000/img0.png", good), ("dataset.json", json.dumps(
        {"labels": [["00000/img0.png", -1]]}).encode())])))
    c.append(("zip-no-images.zip", zip_bytes([("dataset.json", b"{}")])))
    c.append(("zip-image-claims.zip", set_central_sizes(zip_bytes([("00000/img0.png", good)]), None, 0xFFFFFFF0,
                                                        True)))
    c.append(("zip-bomb-image.zip", zip_bytes([("00000/img0.png", png(8192, 8192, idat=zlib.compress(
        bytes(8193 * 8192), 9)))], zipfile.ZIP_DEFLATED)))
    c.append(("zip-traversal.zip", zip_bytes([("../../etc/passwd.png", good)])))
    c.append(("zip-garbage.zip", b"PK\x03\x04" + bytes(200)))
    return c


# ---------------------------------------------------------------------------------------------------------------
# Writing the cases, and the commands that read each kind.

def write_tree(folder, files):
    os.makedirs(folder, exist_ok=True)
    for name, data in files.items():
        if name.endswith("/"):
            os.makedirs(os.path.join(folder, name[:-1]), exist_ok=True)
        elif name.endswith("|"):
            os.mkfifo(os.path.join(folder, name[:-1]))
        elif name.endswith("@"):
            os.symlink(data, os.path.join(folder, name[:-1]))
        else:
            with open(os.path.join(folder, name), "wb") as f:
                f.write(data)


def build_cases(work, quick):
    rng = random.Random(12)
    inputs = os.path.join(work, "in")
    cases = []

    def add_file(cls, name, kind, data):
        assert len(data) <= MAX_FILE, (name, len(data))
        cases.append(Case(cls, name, kind, data))

    for name, data in cases_safetensors(rng):
        add_file("safetensors", name + ".safetensors", "net", data)
    for name, data in cases_pickle(rng):
        add_file("pickle/zip", name, "net", data)
    for name, data in cases_npz(rng):
        add_file("npz", name, "stats", data)
    for name, files in cases_images(rng):
        cases.append(Case("image folder", name, "data", files))
    for name, files in cases_idx(rng):
        cases.append(Case("IDX", name, "data", files))
    for name, files in cases_cifar(rng):
        cases.append(Case("CIFAR", name, "data", files))
    for name, data in cases_zip_dataset(rng):
        add_file("EDM zip", name, "data", data)
    # Files that are not files: every kind meets each.
    specials = [("fifo", "fifo"), ("directory", "dir"), ("/dev/zero", "/dev/zero"), ("/dev/null", "/dev/null"),
                ("/proc/self/mem", "/proc/self/mem"), ("/proc/self/maps", "/proc/self/maps"),
                ("/sys/kernel/mm/transparent_hugepage/enabled", "/sys/kernel/mm/transparent_hugepage/enabled"),
                ("dangling symlink", "dangling"), ("symlink loop", "loop"), ("missing", "missing"),
                ("empty", "empty"), ("newline\nname", "newline\nerror: x")]
    for kind in ("net", "stats", "data", "in"):
        for label, what in specials:
            cases.append(Case("special", "%s-%s" % (kind, label), kind, make=what))
        cases.append(Case("special", "%s-unreadable" % kind, kind, make="unreadable", as_nobody=True))
    # Inputs of the denoiser and latents: tensors of the wrong shape, dtype or values.
    f32 = lambda a: np.asarray(a, dtype="<f4").tobytes()
    ins = {"no-x": {"sigma": ("F32", [1], f32([1.0]))},
           "x-wrong-shape": {"x": ("F32", [2, 2], f32(np.zeros(4))), "sigma": ("F32", [1], f32([1.0]))},
           "x-huge-res": {"x": ("F32", [1, 1, 256, 256], f32(np.zeros(256 * 256))), "sigma": ("F32", [1], f32([1]))},
           "sigma-nan": {"x": ("F32", [1, 1, 8, 8], f32(np.zeros(64))), "sigma": ("F32", [1], f32([np.nan]))},
           "sigma-neg": {"x": ("F32", [1, 1, 8, 8], f32(np.zeros(64))), "sigma": ("F32", [1], f32([-1.0]))},
           "sigma-count": {"x": ("F32", [2, 1, 8, 8], f32(np.zeros(128))), "sigma": ("F32", [3], f32([1, 1, 1]))},
           "x-int": {"x": ("I64", [1, 1, 8, 8], bytes(512)), "sigma": ("F32", [1], f32([1.0]))},
           "x-bool": {"x": ("BOOL", [1, 1, 8, 8], bytes(64)), "sigma": ("F32", [1], f32([1.0]))},
           "x-inf": {"x": ("F32", [1, 1, 8, 8], f32(np.full(64, np.inf))), "sigma": ("F32", [1], f32([1.0]))},
           "x-batch-0": {"x": ("F32", [0, 1, 8, 8], b""), "sigma": ("F32", [0], b"")},
           "latents-5d": {"latents": ("F32", [1, 1, 1, 8, 8], f32(np.zeros(64)))},
           "latents-channels": {"latents": ("F32", [1, 3, 8, 8], f32(np.zeros(192)))},
           "latents-nan": {"latents": ("F32", [1, 1, 8, 8], f32(np.full(64, np.nan)))},
           "latents-f16": {"latents": ("F16", [1, 1, 8, 8], bytes(128))},
           "labels-bad": {"x": ("F32", [1, 1, 8, 8], f32(np.zeros(64))), "sigma": ("F32", [1], f32([1.0])),
                          "class_labels": ("F32", [1, 99], f32(np.zeros(99)))}}
    for name, tensors in ins.items():
        add_file("tensor inputs", name + ".safetensors", "in", safetensors(tensors))
    if quick:
        # Every class stays; within a class every tenth case (a fixed choice, so runs compare).
        by = {}
        for c in cases:
            by.setdefault(c.cls, []).append(c)
        cases = [c for group in by.values() for i, c in enumerate(group) if i % 10 == 0]
    for i, c in enumerate(cases):
        c.path = materialise(c, os.path.join(inputs, "%04d" % i))
    return cases


def materialise(c, folder):
    os.makedirs(folder, exist_ok=True)
    if c.make is not None:
        what = c.make
        if what.startswith("/"):
            return what
        p = os.path.join(folder, what if "\n" in what else "input")
        if what == "fifo":
            os.mkfifo(p)
        elif what == "dir":
            os.makedirs(p)
        elif what == "dangling":
            os.symlink(os.path.join(folder, "nowhere"), p)
        elif what == "loop":
            os.symlink(p, p)
        elif what == "missing":
            pass
        elif what == "unreadable":
            with open(p, "wb") as f:
                f.write(b"secret")
            os.chmod(p, 0)
            os.chmod(folder, 0o755)
        else:  # empty, or a name holding a newline and a forged error line
            open(p, "wb").close()
        return p
    if isinstance(c.data, dict):
        p = os.path.join(folder, "data")
        write_tree(p, c.data)
        return p
    p = os.path.join(folder, c.name.replace("/", "_"))
    with open(p, "wb") as f:
        f.write(c.data)
    return p


def valid_inputs(work):
    """Valid companions: a network, a denoiser input, reference statistics, an IDX dataset."""
    v = os.path.join(work, "valid")
    os.makedirs(v, exist_ok=True)
    files = {"net": os.path.join(GOLDEN, "ddpmpp_uncond_weights.safetensors"),
             "detector": os.path.join(REPO, "models", "fmnist-classifier.safetensors")}
    files["in"] = os.path.join(v, "in.safetensors")
    x = np.zeros((1, 3, 32, 32), dtype="<f4").tobytes()
    with open(files["in"], "wb") as f:
        f.write(safetensors({"x": ("F32", [1, 3, 32, 32], x), "sigma": ("F32", [1], struct.pack("<f", 1.0))}))
    files["stats"] = os.path.join(v, "ref.npz")
    with open(files["stats"], "wb") as f:
        f.write(npz({"mu": np.zeros(4), "sigma": np.eye(4)}))
    files["data"] = os.path.join(v, "idx")
    write_tree(files["data"], {"train-images-idx3-ubyte": idx_images(2, 8, 8),
                               "train-labels-idx1-ubyte": idx_labels(2)})
    return files


def commands(kind, path, valid, out):
    """The reading commands that meet an input of this kind: argv lists (without the binary)."""
    o = lambda ext: os.path.join(out, "out" + ext)
    if kind == "net":
        return [["inspect", path], ["convert", path, o(".safetensors")],
                ["generate", "--net", path, "--seeds", "0", "--steps", "2", "--out", o(".safetensors")],
                ["denoise", "--net", path, "--in", valid["in"], "--out", o(".safetensors")],
                ["distill", "--teacher", path, "--steps", "1", "--batch", "2", "--loss", "l2", "--N", "4",
                 "--outdir", out, "--quiet"],
                ["distill", "--resume", path, "--quiet"], ["export", path, o(".pt")]]
    if kind == "stats":
        return [["fid", "--stats", path, "--ref", valid["stats"]], ["fid", "--stats", valid["stats"], "--ref", path],
                ["inspect", path]]
    if kind == "data":
        return [["train", "--data", path, "--dry-run", "--outdir", out],
                ["train", "--data", path, "--cond", "--pad", "32", "--dry-run", "--outdir", out],
                ["train-classifier", "--data", path, "--epochs", "1", "--out", o(".safetensors")],
                ["ref", "--data", path, "--detector", valid["detector"], "--out", o(".npz")]]
    if kind == "in":
        return [["denoise", "--net", valid["net"], "--in", path, "--out", o(".safetensors")],
                ["generate", "--net", valid["net"], "--latents", path, "--steps", "2", "--out", o(".safetensors")],
                ["inspect", path]]
    raise ValueError(kind)


# ---------------------------------------------------------------------------------------------------------------
# Running one command: a 10 s limit, peak RSS from wait4 (and a watchdog on VmRSS so that a runaway run is
# stopped before it takes the machine), address space capped at 8 GB as a last guard.

def run_one(binary, argv, path, as_nobody, timeout, rss_limit, cwd):
    def limits():
        resource.setrlimit(resource.RLIMIT_AS, (8 << 30, 8 << 30))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        if as_nobody:
            os.setgid(65534)
            os.setuid(65534)

    env = dict(os.environ, OMP_NUM_THREADS="1")
    start = time.monotonic()
    err_path = os.path.join(cwd, "stderr")
    with open(err_path, "wb") as err:
        p = subprocess.Popen([binary] + argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
                             preexec_fn=limits, cwd=cwd, env=env, start_new_session=True)
        peak_watch, killed = 0, None
        while True:
            pid, status, usage = os.wait4(p.pid, os.WNOHANG)
            if pid:
                break
            try:
                with open("/proc/%d/status" % p.pid) as f:
                    for line in f:
                        if line.startswith("VmRSS:"):
                            peak_watch = max(peak_watch, int(line.split()[1]) * 1024)
            except OSError:
                pass
            if killed is None and time.monotonic() - start > timeout:
                killed = "hang"
            if killed is None and peak_watch > 2 * rss_limit:
                killed = "memory"
            if killed:
                os.killpg(p.pid, signal.SIGKILL)
                pid, status, usage = os.wait4(p.pid, 0)
                break
            time.sleep(0.02)
    seconds = time.monotonic() - start
    peak = max(usage.ru_maxrss * 1024, peak_watch)
    stderr = open(err_path, "rb").read().decode("utf-8", "replace")
    rc = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
    return classify(rc, stderr, path, killed, peak, rss_limit, seconds), rc, stderr, peak, seconds


def printable(text):
    return "".join("\\x%02x" % ord(ch) if ord(ch) < 0x20 or ord(ch) == 0x7f else ch for ch in text)


def classify(rc, stderr, path, killed, peak, rss_limit, seconds):
    if killed == "hang" or seconds > 10:
        return "hang"
    if killed == "memory" or peak > rss_limit:
        return "over 1 GB"
    if rc < 0:
        return "signal"
    if rc == 0:
        return "accepted"
    lines = stderr.rstrip("\n").split("\n")
    names = {printable(path), printable(os.path.basename(path))}
    if len(lines) == 1 and lines[0].startswith("error: ") and any(n and n in lines[0] for n in names):
        return "clean error"
    if len(lines) == 1 and lines[0].startswith("error: --"):
        return "option error"  # an option refused before the file was opened (names the option)
    return "bad message"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", default=os.path.join(REPO, "build", "pidistill"))
    ap.add_argument("--work", default="/tmp/pidistill-hostile")
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=10)
    ap.add_argument("--rss-mb", type=int, default=1024)
    ap.add_argument("--quick", action="store_true", help="every tenth case of each class (CTest)")
    ap.add_argument("--all-commands", action="store_true", help="every command of its kind on each file "
                                                                "(5 times the runs)")
    ap.add_argument("--show", action="store_true", help="print every run that is not a clean error")
    ap.add_argument("--json", help="write every run's result here")
    args = ap.parse_args()
    binary = os.path.abspath(args.bin)
    if not os.access(binary, os.X_OK):
        sys.exit("sweep.py: no executable " + binary + " (build it first)")
    work = os.path.abspath(args.work)
    if os.path.exists(work):
        subprocess.run(["chmod", "-R", "u+rwx", work])
        subprocess.run(["rm", "-rf", "--one-file-system", work], check=True)
    os.makedirs(work)
    os.chmod(work, 0o755)
    cases = build_cases(work, args.quick)
    valid = valid_inputs(work)
    jobs = []
    for i, c in enumerate(cases):
        cmds = list(range(len(commands(c.kind, c.path, valid, "OUT"))))
        if not args.all_commands:
            # The commands of a kind share their readers: each file meets one of them, in turn, so that every
            # command meets files of every class.
            cmds = [cmds[i % len(cmds)]]
        for j in cmds:
            jobs.append((i, j, c, None))

    def go(job):
        i, j, c, argv = job
        out = os.path.join(work, "run", "%04d-%d" % (i, j))
        os.makedirs(out)
        os.chmod(out, 0o777)
        argv = commands(c.kind, c.path, valid, out)[j]  # outputs go into this run's own folder
        result, rc, stderr, peak, seconds = run_one(binary, argv, c.path, c.as_nobody, args.timeout,
                                                    args.rss_mb << 20, out)
        return c, argv, result, rc, stderr, peak, seconds

    t0 = time.time()
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        results = list(pool.map(go, jobs))
    total = Counter(r[2] for r in results)
    by_class = {}
    for c, argv, result, *_ in results:
        by_class.setdefault(c.cls, Counter())[result] += 1
    files = len({id(r[0]) for r in results})
    print("hostile sweep: %d files, %d runs, %.0f s, peak RSS %.0f MB (largest run)" %
          (files, len(results), time.time() - t0, max(r[5] for r in results) / 2**20))
    kinds = ["clean error", "option error", "accepted", "signal", "hang", "over 1 GB", "bad message"]
    print("%-16s" % "class" + "".join("%14s" % k for k in kinds))
    for cls, cnt in by_class.items():
        print("%-16s" % cls + "".join("%14d" % cnt[k] for k in kinds))
    print("%-16s" % "all" + "".join("%14d" % total[k] for k in kinds))
    bad = [r for r in results if r[2] in ("signal", "hang", "over 1 GB", "bad message")]
    for c, argv, result, rc, stderr, peak, seconds in (results if args.show else bad):
        if result in ("clean error",) and not args.show:
            continue
        print("%s: %s [%s] rc=%d %.0f MB %.1f s: pidistill %s\n    %s" %
              (result, c.name, c.cls, rc, peak / 2**20, seconds, " ".join(printable(a) for a in argv),
               printable(stderr.strip())[:400]))
    if args.json:
        with open(args.json, "w") as f:
            json.dump([{"class": c.cls, "name": c.name, "argv": argv, "result": result, "rc": rc,
                        "stderr": stderr[:2000], "peak_mb": peak / 2**20, "seconds": seconds}
                       for c, argv, result, rc, stderr, peak, seconds in results], f, indent=1)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
