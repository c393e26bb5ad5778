"""Floating-point operations of one PID step (teacher forward without gradient, two student forwards, the backward
of both), counted from the ATen operators the step actually runs.

Method: the step runs once under a TorchDispatchMode, which sees every ATen call below autograd, backward
included. Counted are the multiply-adds of convolutions, transposed convolutions and matrix products
(aten.convolution, aten.convolution_backward with its output mask, mm, addmm, bmm; einsum and matmul reach ATen as
these), at 2 FLOPs per multiply-add. Elementwise work (group norm, SiLU, softmax, the loss, RAdam, EMA) is not
counted: it is a few percent of the FLOPs, and memory-bound. The backward is counted as run (grad of the input and
of the weight, each the size of the forward product, less the input gradient of the first layer), next to the
usual '3x forward' estimate.

  /usr/bin/python3 bench/python/flops.py --teacher FILE --batch 32 [--json]"""
import argparse
import json
import os
import sys
from collections import defaultdict

import torch
from torch.utils._python_dispatch import TorchDispatchMode

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pid_step  # noqa: E402

aten = torch.ops.aten


def prod(xs):
    p = 1
    for x in xs:
        p *= int(x)
    return p


def conv_flops(x_shape, w_shape, out_shape, transposed, groups):
    # Each output element of a conv is a dot product of length Cin/groups * k*k; for a transposed conv each input
    # element scatters into Cout/groups * k*k outputs. Either way: 2 * (batch * spatial of the 'many' side) * ...
    if not transposed:
        return 2 * prod(out_shape) * (w_shape[1]) * prod(w_shape[2:])  # w: [Cout, Cin/g, k, k]
    return 2 * prod(x_shape) * (w_shape[1]) * prod(w_shape[2:])  # w: [Cin, Cout/g, k, k]


class FlopCounter(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.flops = defaultdict(int)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        f = func._overloadpacket
        if f is aten.convolution:
            x, w = args[0], args[1]
            self.flops["conv fwd"] += conv_flops(x.shape, w.shape, out.shape, args[6], args[8])
        elif f is aten.convolution_backward:
            grad_out, x, w = args[0], args[1], args[2]
            transposed, groups, mask = args[7], args[9], args[10]
            one = conv_flops(x.shape, w.shape, grad_out.shape, transposed, groups)
            if mask[0]:
                self.flops["conv bwd (input)"] += one
            if mask[1]:
                self.flops["conv bwd (weight)"] += one
        elif f is aten.mm:
            a, b = args[0], args[1]
            self.flops["matmul"] += 2 * a.shape[0] * a.shape[1] * b.shape[1]
        elif f is aten.addmm:
            a, b = args[1], args[2]
            self.flops["matmul"] += 2 * a.shape[0] * a.shape[1] * b.shape[1]
        elif f is aten.bmm:
            a, b = args[0], args[1]
            self.flops["matmul"] += 2 * a.shape[0] * a.shape[1] * a.shape[2] * b.shape[2]
        elif f in (aten.baddbmm, aten.addbmm, aten.matmul, aten._convolution):
            raise RuntimeError(f"uncounted {f}")
        return out

    def total(self):
        return sum(self.flops.values())


def count_step(teacher_path, batch, N=250):
    torch.manual_seed(0)
    teacher, config = pid_step.load_teacher(teacher_path)
    trainer = pid_step.PidTrainer(teacher, config, batch, N=N)
    z = torch.randn(trainer.shape)
    idx = torch.randint(0, N, (batch,))
    # Teacher alone (one forward, no gradient), then one student forward, then the whole loss + backward.
    with FlopCounter() as c_teacher, torch.no_grad():
        import song_unet

        song_unet.edm_denoise(teacher, z * 10, pid_step.idx2sigmas(idx, N))
    with FlopCounter() as c_fwd:
        pid_step.student(trainer.F, z, pid_step.idx2sigmas(idx, N))
    with FlopCounter() as c_step:
        out = pid_step.pid_loss(trainer.F, trainer.teacher, z, idx, N)
        out["loss"].mean().backward()
    fwd = c_fwd.total()
    return {
        "parameters": sum(p.numel() for p in trainer.params),
        "batch": batch,
        "teacher_forward_gflop": c_teacher.total() / 1e9,
        "student_forward_gflop": fwd / 1e9,
        "step_gflop": c_step.total() / 1e9,
        "step_gflop_3x_rule": (c_teacher.total() + 2 * 3 * fwd) / 1e9,
        "by_op_gflop": {k: v / 1e9 for k, v in sorted(c_step.flops.items())},
        "gflop_per_image": c_step.total() / 1e9 / batch,
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--teacher", required=True)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(1)
    r = count_step(args.teacher, args.batch)
    if args.json:
        print(json.dumps(r))
        return
    print(f"{os.path.basename(args.teacher)}: {r['parameters']:,} parameters, batch {r['batch']}")
    print(f"  teacher forward       {r['teacher_forward_gflop']:10.2f} GFLOP")
    print(f"  student forward       {r['student_forward_gflop']:10.2f} GFLOP (x2 per step)")
    print(f"  one PID step, counted {r['step_gflop']:10.2f} GFLOP ({r['gflop_per_image']:.3f} per image)")
    print(f"  3x-forward estimate   {r['step_gflop_3x_rule']:10.2f} GFLOP")
    for k, v in r["by_op_gflop"].items():
        print(f"    {k:<20} {v:10.2f}")


if __name__ == "__main__":
    main()
