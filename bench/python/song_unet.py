"""EDM's SongUNet (DDPM++ / NCSN++) and EDM preconditioning, written from the architecture description in
../shared/golden/README.md (sections 3, 7) and our C++ (src/pidistill/nets/). Module names are the checkpoint's
names, so a state dict without the 'model.' prefix loads as it is.

This is the benchmark's reference network: plain PyTorch, the way EDM's Python computes it (same op order), so the
comparison with the C++ measures the same kernels called the same way."""
import math

import numpy as np
import torch
import torch.nn.functional as Fn


def weight_init(shape, mode, fan_in, fan_out):
    if mode == "xavier_uniform":
        return math.sqrt(6 / (fan_in + fan_out)) * (torch.rand(*shape) * 2 - 1)
    if mode == "xavier_normal":
        return math.sqrt(2 / (fan_in + fan_out)) * torch.randn(*shape)
    if mode == "kaiming_uniform":
        return math.sqrt(3 / fan_in) * (torch.rand(*shape) * 2 - 1)
    if mode == "kaiming_normal":
        return math.sqrt(1 / fan_in) * torch.randn(*shape)
    raise ValueError(f"unknown init mode {mode}")


class Linear(torch.nn.Module):
    def __init__(self, in_features, out_features, bias=True, init_mode="xavier_uniform", init_weight=1, init_bias=0):
        super().__init__()
        self.in_features = in_features
        self.weight = torch.nn.Parameter(weight_init([out_features, in_features], init_mode, in_features, out_features) * init_weight)
        self.bias = torch.nn.Parameter(weight_init([out_features], init_mode, in_features, out_features) * init_bias) if bias else None

    def forward(self, x):
        x = x @ self.weight.to(x.dtype).t()  # x: [N, out]
        if self.bias is not None:
            x = x.add_(self.bias.to(x.dtype))
        return x


class Conv2d(torch.nn.Module):
    def __init__(self, in_channels, out_channels, kernel, bias=True, up=False, down=False, resample_filter=(1, 1),
                 fused_resample=False, init_mode="xavier_uniform", init_weight=1, init_bias=0):
        assert not (up and down)
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.up, self.down, self.fused_resample = up, down, fused_resample
        fan_in, fan_out = in_channels * kernel * kernel, out_channels * kernel * kernel
        self.weight = torch.nn.Parameter(weight_init([out_channels, in_channels, kernel, kernel], init_mode, fan_in, fan_out) * init_weight) if kernel else None
        self.bias = torch.nn.Parameter(weight_init([out_channels], init_mode, fan_in, fan_out) * init_bias) if kernel and bias else None
        f = torch.as_tensor(resample_filter, dtype=torch.float32)
        f = f.ger(f).unsqueeze(0).unsqueeze(1) / f.sum().square()  # f: [1, 1, K, K]
        self.register_buffer("resample_filter", f if up or down else None)

    def forward(self, x):
        w = self.weight.to(x.dtype) if self.weight is not None else None
        b = self.bias.to(x.dtype) if self.bias is not None else None
        f = self.resample_filter.to(x.dtype) if self.resample_filter is not None else None
        w_pad = w.shape[-1] // 2 if w is not None else 0
        f_pad = (f.shape[-1] - 1) // 2 if f is not None else 0
        if self.fused_resample and self.up and w is not None:
            x = Fn.conv_transpose2d(x, f.mul(4).tile([self.in_channels, 1, 1, 1]), groups=self.in_channels, stride=2, padding=max(f_pad - w_pad, 0))
            x = Fn.conv2d(x, w, padding=max(w_pad - f_pad, 0))
        elif self.fused_resample and self.down and w is not None:
            x = Fn.conv2d(x, w, padding=w_pad + f_pad)
            x = Fn.conv2d(x, f.tile([self.out_channels, 1, 1, 1]), groups=self.out_channels, stride=2)
        else:
            if self.up:
                x = Fn.conv_transpose2d(x, f.mul(4).tile([self.in_channels, 1, 1, 1]), groups=self.in_channels, stride=2, padding=f_pad)
            if self.down:
                x = Fn.conv2d(x, f.tile([self.in_channels, 1, 1, 1]), groups=self.in_channels, stride=2, padding=f_pad)
            if w is not None:
                x = Fn.conv2d(x, w, padding=w_pad)
        if b is not None:  # the bias after the convolution, as EDM does
            x = x.add_(b.reshape(1, -1, 1, 1))
        return x


class GroupNorm(torch.nn.Module):
    def __init__(self, num_channels, num_groups=32, min_channels_per_group=4, eps=1e-5):
        super().__init__()
        self.num_groups = min(num_groups, num_channels // min_channels_per_group)
        self.eps = eps
        self.weight = torch.nn.Parameter(torch.ones(num_channels))
        self.bias = torch.nn.Parameter(torch.zeros(num_channels))

    def forward(self, x):
        return Fn.group_norm(x, num_groups=self.num_groups, weight=self.weight.to(x.dtype), bias=self.bias.to(x.dtype), eps=self.eps)


class UNetBlock(torch.nn.Module):
    """SongUNet's block: GroupNorm-SiLU-conv, noise embedding added, GroupNorm-SiLU-conv, skip; optional attention."""

    def __init__(self, in_channels, out_channels, emb_channels, up=False, down=False, attention=False, num_heads=1,
                 dropout=0, skip_scale=math.sqrt(0.5), eps=1e-6, resample_filter=(1, 1), init=None, init_zero=None,
                 init_attn=None):
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.num_heads = num_heads if attention else 0
        self.dropout, self.skip_scale = dropout, skip_scale
        self.norm0 = GroupNorm(in_channels, eps=eps)
        self.conv0 = Conv2d(in_channels, out_channels, 3, up=up, down=down, resample_filter=resample_filter, **init)
        self.affine = Linear(emb_channels, out_channels, **init)
        self.norm1 = GroupNorm(out_channels, eps=eps)
        self.conv1 = Conv2d(out_channels, out_channels, 3, **init_zero)
        self.skip = None
        if out_channels != in_channels or up or down:
            self.skip = Conv2d(in_channels, out_channels, 1, up=up, down=down, resample_filter=resample_filter, **init)
        if self.num_heads:
            self.norm2 = GroupNorm(out_channels, eps=eps)
            self.qkv = Conv2d(out_channels, out_channels * 3, 1, **init_attn)
            self.proj = Conv2d(out_channels, out_channels, 1, **init_zero)

    def forward(self, x, emb):
        orig = x
        x = self.conv0(Fn.silu(self.norm0(x)))  # x: [N, out, H', W']
        params = self.affine(emb).unsqueeze(2).unsqueeze(3).to(x.dtype)  # params: [N, out, 1, 1]
        x = Fn.silu(self.norm1(x.add_(params)))
        x = self.conv1(Fn.dropout(x, p=self.dropout, training=self.training))
        x = x.add_(self.skip(orig) if self.skip is not None else orig)
        x = x * self.skip_scale
        if self.num_heads:
            N, C = x.shape[0], x.shape[1]
            # q, k, v interleaved per channel: [N*heads, C/heads, 3, HW]
            q, k, v = self.qkv(self.norm2(x)).reshape(N * self.num_heads, C // self.num_heads, 3, -1).unbind(2)
            w = torch.einsum("ncq,nck->nqk", q.to(torch.float32), (k / math.sqrt(k.shape[1])).to(torch.float32)).softmax(dim=2)
            a = torch.einsum("nqk,nck->ncq", w, v.to(torch.float32)).to(x.dtype)  # a: [N*heads, C/heads, HW]
            x = self.proj(a.reshape(*x.shape)).add_(x)
            x = x * self.skip_scale
        return x


class PositionalEmbedding(torch.nn.Module):
    def __init__(self, num_channels, max_positions=10000, endpoint=False):
        super().__init__()
        self.num_channels, self.max_positions, self.endpoint = num_channels, max_positions, endpoint

    def forward(self, x):
        freqs = torch.arange(start=0, end=self.num_channels // 2, dtype=torch.float32, device=x.device)
        freqs = freqs / (self.num_channels // 2 - (1 if self.endpoint else 0))
        freqs = (1 / self.max_positions) ** freqs
        x = x.ger(freqs.to(x.dtype))  # x: [N, C/2]
        return torch.cat([x.cos(), x.sin()], dim=1)


class FourierEmbedding(torch.nn.Module):
    def __init__(self, num_channels, scale=16):
        super().__init__()
        self.register_buffer("freqs", torch.randn(num_channels // 2) * scale)

    def forward(self, x):
        x = x.ger((2 * np.pi * self.freqs).to(x.dtype))
        return torch.cat([x.cos(), x.sin()], dim=1)


class SongUNet(torch.nn.Module):
    def __init__(self, img_resolution, img_channels, label_dim=0, augment_dim=0, model_channels=128,
                 channel_mult=(1, 2, 2, 2), channel_mult_emb=4, num_blocks=4, attn_resolutions=(16,), dropout=0.10,
                 label_dropout=0, embedding_type="positional", channel_mult_noise=1, encoder_type="standard",
                 decoder_type="standard", resample_filter=(1, 1), **unused):
        assert embedding_type in ("fourier", "positional")
        assert encoder_type in ("standard", "skip", "residual")
        assert decoder_type in ("standard", "skip")
        super().__init__()
        self.label_dropout = label_dropout
        emb_channels = model_channels * channel_mult_emb
        noise_channels = model_channels * channel_mult_noise
        init = dict(init_mode="xavier_uniform")
        init_zero = dict(init_mode="xavier_uniform", init_weight=1e-5)
        init_attn = dict(init_mode="xavier_uniform", init_weight=math.sqrt(0.2))
        block_kwargs = dict(emb_channels=emb_channels, num_heads=1, dropout=dropout, skip_scale=math.sqrt(0.5),
                            eps=1e-6, resample_filter=resample_filter, init=init, init_zero=init_zero,
                            init_attn=init_attn)

        # Mapping.
        self.map_noise = PositionalEmbedding(noise_channels, endpoint=True) if embedding_type == "positional" else FourierEmbedding(noise_channels)
        self.map_label = Linear(label_dim, noise_channels, **init) if label_dim else None
        self.map_augment = Linear(augment_dim, noise_channels, bias=False, **init) if augment_dim else None
        self.map_layer0 = Linear(noise_channels, emb_channels, **init)
        self.map_layer1 = Linear(emb_channels, emb_channels, **init)

        # Encoder.
        self.enc = torch.nn.ModuleDict()
        cout = caux = img_channels
        for level, mult in enumerate(channel_mult):
            res = img_resolution >> level
            if level == 0:
                cin, cout = cout, model_channels
                self.enc[f"{res}x{res}_conv"] = Conv2d(cin, cout, 3, **init)
            else:
                self.enc[f"{res}x{res}_down"] = UNetBlock(cout, cout, down=True, **block_kwargs)
                if encoder_type == "skip":
                    self.enc[f"{res}x{res}_aux_down"] = Conv2d(caux, caux, 0, down=True, resample_filter=resample_filter)
                    self.enc[f"{res}x{res}_aux_skip"] = Conv2d(caux, cout, 1, **init)
                if encoder_type == "residual":
                    self.enc[f"{res}x{res}_aux_residual"] = Conv2d(caux, cout, 3, down=True, resample_filter=resample_filter, fused_resample=True, **init)
                    caux = cout
            for idx in range(num_blocks):
                cin, cout = cout, model_channels * mult
                self.enc[f"{res}x{res}_block{idx}"] = UNetBlock(cin, cout, attention=(res in attn_resolutions), **block_kwargs)
        skips = [block.out_channels for name, block in self.enc.items() if "aux" not in name]

        # Decoder.
        self.dec = torch.nn.ModuleDict()
        for level, mult in reversed(list(enumerate(channel_mult))):
            res = img_resolution >> level
            if level == len(channel_mult) - 1:
                self.dec[f"{res}x{res}_in0"] = UNetBlock(cout, cout, attention=True, **block_kwargs)
                self.dec[f"{res}x{res}_in1"] = UNetBlock(cout, cout, **block_kwargs)
            else:
                self.dec[f"{res}x{res}_up"] = UNetBlock(cout, cout, up=True, **block_kwargs)
            for idx in range(num_blocks + 1):
                cin, cout = cout + skips.pop(), model_channels * mult
                self.dec[f"{res}x{res}_block{idx}"] = UNetBlock(cin, cout, attention=(idx == num_blocks and res in attn_resolutions), **block_kwargs)
            if decoder_type == "skip" or level == 0:
                if decoder_type == "skip" and level < len(channel_mult) - 1:
                    self.dec[f"{res}x{res}_aux_up"] = Conv2d(img_channels, img_channels, 0, up=True, resample_filter=resample_filter)
                self.dec[f"{res}x{res}_aux_norm"] = GroupNorm(cout, eps=1e-6)
                self.dec[f"{res}x{res}_aux_conv"] = Conv2d(cout, img_channels, 3, **init_zero)

    def forward(self, x, noise_labels, class_labels=None, augment_labels=None):
        # Mapping; the embedding's halves are swapped to [sin, cos].
        emb = self.map_noise(noise_labels)
        emb = emb.reshape(emb.shape[0], 2, -1).flip(1).reshape(*emb.shape)  # emb: [N, noise_channels]
        if self.map_label is not None:
            tmp = class_labels
            if self.training and self.label_dropout:
                tmp = tmp * (torch.rand([x.shape[0], 1], device=x.device) >= self.label_dropout).to(tmp.dtype)
            emb = emb + self.map_label(tmp * np.sqrt(self.map_label.in_features))
        if self.map_augment is not None and augment_labels is not None:
            emb = emb + self.map_augment(augment_labels)
        emb = Fn.silu(self.map_layer0(emb))
        emb = Fn.silu(self.map_layer1(emb))  # emb: [N, emb_channels]

        # Encoder.
        skips = []
        aux = x
        for name, block in self.enc.items():
            if "aux_down" in name:
                aux = block(aux)
            elif "aux_skip" in name:
                x = skips[-1] = x + block(aux)
            elif "aux_residual" in name:
                x = skips[-1] = aux = (x + block(aux)) / np.sqrt(2)
            else:
                x = block(x, emb) if isinstance(block, UNetBlock) else block(x)
                skips.append(x)

        # Decoder.
        aux = tmp = None
        for name, block in self.dec.items():
            if "aux_up" in name:
                aux = block(aux)
            elif "aux_norm" in name:
                tmp = block(x)
            elif "aux_conv" in name:
                tmp = block(Fn.silu(tmp))
                aux = tmp if aux is None else tmp + aux
            else:
                if x.shape[1] != block.in_channels:
                    x = torch.cat([x, skips.pop()], dim=1)
                x = block(x, emb)
        return aux


def edm_denoise(net, x, sigma, sigma_data=0.5):
    """EDM preconditioning: D(x, sigma) = c_skip x + c_out F(c_in x, c_noise), in float32 as EDMPrecond casts."""
    x = x.to(torch.float32)
    sigma = sigma.to(torch.float32).reshape(-1, 1, 1, 1)  # sigma: [B or 1, 1, 1, 1]
    c_skip = sigma_data ** 2 / (sigma ** 2 + sigma_data ** 2)
    c_out = sigma * sigma_data / (sigma ** 2 + sigma_data ** 2).sqrt()
    c_in = 1 / (sigma_data ** 2 + sigma ** 2).sqrt()
    c_noise = sigma.log() / 4
    F_x = net(c_in * x, c_noise.flatten())
    return c_skip * x + c_out * F_x.to(torch.float32)


def load_state(net, tensors, path):
    """Loads an EDMPrecond state dict (keys 'model.*'), as PID does: 'model.' removed, map_augment dropped when the
    network has none. Every key must match, in name and shape."""
    state = {}
    for k, v in tensors.items():
        k = k.replace("model.", "")
        if "map_augment" in k and net.map_augment is None:
            continue
        state[k] = v
    own = net.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        raise ValueError(f"{path}: missing keys {missing[:5]}, unexpected keys {unexpected[:5]}")
    for k, v in state.items():
        if own[k].shape != v.shape:
            raise ValueError(f"{path}: '{k}' has shape {list(v.shape)}, the network wants {list(own[k].shape)}")
    net.load_state_dict(state)
    return net


# EDM train.py's --arch ddpmpp preset for CIFAR-10 (the paper's teacher), without the augmentation mapping PID drops.
CIFAR10_DDPMPP = dict(img_resolution=32, img_channels=3, label_dim=0, augment_dim=0, model_channels=128,
                      channel_mult=[2, 2, 2], channel_mult_emb=4, num_blocks=4, attn_resolutions=[16], dropout=0.13,
                      label_dropout=0, embedding_type="positional", channel_mult_noise=1, encoder_type="standard",
                      decoder_type="standard", resample_filter=[1, 1])
