"""One PID training step the way the official code computes it (../shared/notes/pid-method.md): the student
x_theta(z, t) evaluated twice with gradients, the frozen teacher once without, the L2 residual, RAdam, three EMAs.
Our own Python reference for bench/compare.sh; it uses our C++'s file formats, not the official code."""
import copy
import json
import math

import torch

import song_unet
import st_io

SIGMA_MIN, SIGMA_MAX, RHO, SIGMA_DATA = 0.002, 80.0, 7.0, 0.5


def idx2sigmas(idx, N):
    """Karras grid point i of N, in float32 as PID computes it in training (int64 / (N-1) is float32)."""
    return (idx / (N - 1) * (SIGMA_MIN ** (1 / RHO) - SIGMA_MAX ** (1 / RHO)) + SIGMA_MAX ** (1 / RHO)) ** RHO


def student(F, z, t):
    """x_theta(z, t) = (t/T) T z + (1 - t/T) F(c_in T z, ln(t)/4), with the constant c_in = 1/sqrt(sd^2 + T^2)."""
    noise = z * SIGMA_MAX
    c_in = 1 / math.sqrt(SIGMA_DATA ** 2 + SIGMA_MAX ** 2)
    F_x = F(noise * c_in, 0.25 * t.log())
    w = (t / SIGMA_MAX).reshape(-1, 1, 1, 1)  # w: [B, 1, 1, 1]
    return w * noise + (1 - w) * F_x


def pid_loss(F, teacher, z, idx, N, distance="l2", lpips=None):
    """Per-sample PID loss [B] and its intermediates."""
    idx2 = idx + 1
    idx2 = torch.where(idx2 == N, torch.full_like(idx2, N - 2), idx2)  # backward difference on the last point
    t, t2 = idx2sigmas(idx, N), idx2sigmas(idx2, N)  # t, t2: [B]
    y_hat = student(F, z, t)
    y_hat_dt = student(F, z, t2)
    dydx = (y_hat - y_hat_dt) / (t - t2).reshape(-1, 1, 1, 1)
    with torch.no_grad():
        teacher_pred = song_unet.edm_denoise(teacher, y_hat.detach(), t)
    target = y_hat - dydx * t.reshape(-1, 1, 1, 1)
    if distance == "l2":
        loss = ((target - teacher_pred) ** 2).reshape(z.shape[0], -1).mean(1)
    elif distance == "l1":
        loss = (target - teacher_pred).abs().reshape(z.shape[0], -1).mean(1)
    elif distance == "lpips":
        up = lambda x: torch.nn.functional.interpolate(x, size=224, mode="bilinear") if x.shape[-1] < 256 else x
        loss = lpips((up(target) + 1) / 2, (up(teacher_pred) + 1) / 2)
    else:
        raise ValueError(f"unknown distance {distance}")
    return dict(loss=loss, t=t, t2=t2, y_hat=y_hat, y_hat_dt=y_hat_dt, dydx=dydx, target=target,
                teacher_pred=teacher_pred)


def update_ema(target_params, source_params, rate):
    for targ, src in zip(target_params, source_params):
        targ.detach().mul_(rate).add_(src, alpha=1 - rate)


class PidTrainer:
    """The student initialised from the teacher (dropout 0, train mode), RAdam lr 2e-4, EMAs from the initial
    weights. step() draws z and indices, runs the loss, backward, the norms the official trainer logs, RAdam and
    the EMA updates."""

    def __init__(self, teacher, config, batch, N=250, lr=2e-4, ema_rates=(0.999, 0.9999, 0.99995), seed=0,
                 distance="l2", lpips=None, channels_last=False):
        self.teacher = teacher.eval().requires_grad_(False)
        student_config = dict(config, dropout=0, label_dropout=0)
        self.F = song_unet.SongUNet(**student_config)
        self.F.load_state_dict(teacher.state_dict())
        self.F.train().requires_grad_(True)
        self.params = list(self.F.parameters())
        self.opt = torch.optim.RAdam(self.params, lr=lr, weight_decay=0, eps=1e-8)
        self.ema_rates = list(ema_rates)
        self.ema_params = [copy.deepcopy(self.params) for _ in self.ema_rates]
        self.batch, self.N, self.distance, self.lpips = batch, N, distance, lpips
        self.shape = [batch, config["img_channels"], config["img_resolution"], config["img_resolution"]]
        self.gen = torch.Generator().manual_seed(seed)
        # channels_last: networks and latents in NHWC, the layout oneDNN's convolutions use natively (a variant to
        # measure; the parameters stay the same objects, so the optimiser and EMAs are unaffected).
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        if channels_last:
            self.F.to(memory_format=torch.channels_last)
            self.teacher.to(memory_format=torch.channels_last)

    def step(self):
        z = torch.randn(self.shape, generator=self.gen).contiguous(memory_format=self.memory_format)
        idx = torch.randint(0, self.N, (self.batch,), generator=self.gen)
        self.opt.zero_grad(set_to_none=True)
        out = pid_loss(self.F, self.teacher, z, idx, self.N, self.distance, self.lpips)
        loss = out["loss"].mean()
        loss.backward()
        # The official trainer logs grad and parameter norms every step (one .item() per tensor).
        grad_norm = sum((p.grad ** 2).sum().item() for p in self.params if p.grad is not None) ** 0.5
        param_norm = sum((p ** 2).sum().item() for p in self.params) ** 0.5
        self.opt.step()
        for rate, ema in zip(self.ema_rates, self.ema_params):
            update_ema(ema, self.params, rate)
        return loss.item(), grad_norm, param_norm


def load_teacher(path):
    """A network file of ours (.safetensors with metadata 'config'): the network (eval) and its config dict."""
    tensors, meta = st_io.read(path)
    if "config" not in meta:
        raise ValueError(f"{path}: no metadata 'config' (write one with make_random_teacher.py)")
    config = json.loads(meta["config"])
    if config.get("model_type", "SongUNet") != "SongUNet":
        raise ValueError(f"{path}: model_type {config['model_type']}; this reference has SongUNet only")
    if meta.get("precond", "edm") != "edm":
        raise ValueError(f"{path}: precond {meta['precond']}; this reference has EDM preconditioning only")
    # PID builds student and teacher without the augmentation mapping and drops its keys.
    config = dict(config, augment_dim=0)
    net = song_unet.SongUNet(**config)
    song_unet.load_state(net, tensors, path)
    return net.eval(), config
