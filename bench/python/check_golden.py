"""Proves the Python reference computes what the official code computes: against ../shared/golden (numbers from the
official EDM/PID code, float32 files) with the golden README's float32 tolerances, and loads our bundled teacher.

  /usr/bin/python3 bench/python/check_golden.py [--golden DIR] [--teacher FILE]

Prints the worst relative error of each check (max |ours - ref| / max |ref|) and exits 1 if any is over its
tolerance."""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pid_step  # noqa: E402
import song_unet  # noqa: E402
import st_io  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
failures = []


def check(name, ours, ref, tol):
    ours, ref = ours.detach().to(torch.float64), ref.to(torch.float64)
    if ours.shape != ref.shape:
        failures.append(name)
        print(f"FAIL {name}: shape {list(ours.shape)} vs {list(ref.shape)}")
        return
    err = ((ours - ref).abs().max() / ref.abs().max().clamp_min(1e-30)).item()
    ok = err <= tol
    if not ok:
        failures.append(name)
    print(f"{'ok  ' if ok else 'FAIL'} {name:<34} worst rel. error {err:.2e} (tolerance {tol:.0e})")
    return err


def golden_net(golden):
    tensors, meta = st_io.read(os.path.join(golden, "ddpmpp_uncond_weights.safetensors"))
    config = json.loads(meta["config"])
    torch.manual_seed(12345)  # another init than the golden one: every value must come from the file
    net = song_unet.SongUNet(**config)
    return song_unet.load_state(net, tensors, "ddpmpp_uncond_weights"), config


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--golden", default=os.path.join(os.path.dirname(ROOT), "shared", "golden"))
    ap.add_argument("--teacher", default=os.path.join(ROOT, "models", "fashion-mnist-ddpmpp-teacher.safetensors"))
    ap.add_argument("--cli", default=os.path.join(ROOT, "build", "pidistill"),
                    help="our C++ binary: its 'denoise' of the bundled teacher must agree with this reference")
    args = ap.parse_args()
    torch.set_num_threads(1)
    g = lambda name: st_io.read(os.path.join(args.golden, name))[0]

    # 1. The network and EDM preconditioning (item 2 of the golden data).
    net, config = golden_net(args.golden)
    net.eval()
    io = g("ddpmpp_uncond_io_f32.safetensors")
    with torch.no_grad():
        check("SongUNet F(x_in, noise_labels)", net(io["F.x_in"], io["F.noise_labels"]), io["F.out"], 1e-5)
        check("EDMPrecond D(x, sigma)", song_unet.edm_denoise(net, io["x"], io["sigma"]), io["edm.D"], 1e-5)

    # 2. The PID student (item 3).
    s = g("pid_student_io_f32.safetensors")
    with torch.no_grad():
        check("student x_theta(z, t)", pid_step.student(net, s["z"], s["t"]), s["x_theta"], 1e-5)

    # 3. The PID loss with L2 and the gradients of all 142 student parameters (item 4): student in train mode,
    # teacher the same weights in eval mode.
    ref = g("pid_loss_l2_f32.safetensors")
    F, _ = golden_net(args.golden)
    teacher, _ = golden_net(args.golden)
    F.train()
    teacher.eval().requires_grad_(False)
    out = pid_step.pid_loss(F, teacher, ref["z"], ref["indices"], N=250)
    for k in ["t", "t2", "y_hat", "y_hat_dt", "teacher_pred"]:
        check(f"pid_loss l2: {k}", out[k], ref[k], 1e-5)
    for k in ["dydx", "target", "loss"]:
        check(f"pid_loss l2: {k}", out[k], ref[k], 1e-3)
    out["loss"].sum().backward()
    worst, worst_name, n = 0.0, "", 0
    for name, p in F.named_parameters():
        r = ref["grad." + name].to(torch.float64)
        err = ((p.grad.to(torch.float64) - r).abs().max() / r.abs().max().clamp_min(1e-30)).item()
        n += 1
        if err > worst:
            worst, worst_name = err, name
    ok = worst <= 1e-3 and n == 142
    if not ok:
        failures.append("gradients")
    print(f"{'ok  ' if ok else 'FAIL'} {'pid_loss l2: ' + str(n) + ' gradients':<34} worst rel. error {worst:.2e} "
          f"(tolerance 1e-03; worst at {worst_name})")

    # 4. RAdam (torch.optim.RAdam, as PID uses it) and PID's update_ema (section 11).
    r = g("radam_ema_f32.safetensors")
    for prefix, wd in [("wd0.", 0.0), ("wd001.", 0.01)]:
        p = torch.nn.Parameter(r["param_init"].clone())
        opt = torch.optim.RAdam([p], lr=0.01, betas=(0.9, 0.999), eps=1e-8, weight_decay=wd)
        emas = [[p.detach().clone()] for _ in range(3)]
        for k in range(12):
            p.grad = r["grads"][k].clone()
            opt.step()
            for e, rate in zip(emas, [0.999, 0.9999, 0.99995]):
                pid_step.update_ema(e, [p], rate)
        check(f"RAdam {prefix}params[12]", p, r[prefix + "params"][11], 2e-6)
        check(f"EMA {prefix}ema_final", torch.stack([e[0] for e in emas]), r[prefix + "ema_final"], 2e-6)

    # 5. Our bundled teacher loads (every key, every shape) and gives finite output.
    teacher, tconfig = pid_step.load_teacher(args.teacher)
    n_params = sum(p.numel() for p in teacher.parameters())
    x = torch.randn(2, tconfig["img_channels"], tconfig["img_resolution"], tconfig["img_resolution"])
    with torch.no_grad():
        d = song_unet.edm_denoise(teacher, x, torch.tensor([80.0, 0.5]))
    ok = bool(torch.isfinite(d).all())
    if not ok:
        failures.append("bundled teacher")
    print(f"{'ok  ' if ok else 'FAIL'} bundled teacher loads: {n_params:,} parameters "
          f"(map_augment dropped, as PID does), D finite")

    # 6. The same teacher through our C++ (`pidistill denoise`), same input: the two implementations agree.
    if os.path.exists(args.cli):
        with tempfile.TemporaryDirectory() as tmp:
            x = torch.randn(4, tconfig["img_channels"], tconfig["img_resolution"], tconfig["img_resolution"],
                            generator=torch.Generator().manual_seed(7))
            sigma = torch.tensor([0.002, 0.5, 5.0, 80.0])
            st_io.write(os.path.join(tmp, "in.safetensors"), {"x": x, "sigma": sigma})
            subprocess.run([args.cli, "--threads", "1", "denoise", "--net", args.teacher, "--in", os.path.join(tmp, "in.safetensors"),
                            "--out", os.path.join(tmp, "out.safetensors")], check=True,
                           stdout=subprocess.DEVNULL)
            d_cpp = st_io.read(os.path.join(tmp, "out.safetensors"))[0]["D"]
            with torch.no_grad():
                d_py = song_unet.edm_denoise(teacher, x, sigma)
            check("bundled teacher: D, C++ vs Python", d_py, d_cpp, 1e-5)
    else:
        print(f"skip bundled teacher C++ vs Python: no {args.cli} (make build)")

    if failures:
        print(f"{len(failures)} check(s) failed: {', '.join(failures)}")
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
