"""LPIPS as piq 0.7.0 computes it and our C++ (src/pidistill/metrics/lpips.cpp) does: ImageNet-normalised input,
VGG16's 13 convolutions with average pooling between the stages, each stage's last ReLU output unit-normalised
along channels, squared differences weighted per channel, averaged over space, summed. Weights from our combined
file (features.<idx>.weight/bias, lpips_lin.<l>)."""
import torch
import torch.nn.functional as Fn

import st_io

VGG16_CONVS = [(3, 64), (64, 64), (64, 128), (128, 128), (128, 256), (256, 256), (256, 256),
               (256, 512), (512, 512), (512, 512), (512, 512), (512, 512), (512, 512)]
CONVS_PER_STAGE = [2, 2, 3, 3, 3]
FEATURE_INDICES = [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28]  # torchvision's vgg16().features
STAGE_CHANNELS = [64, 128, 256, 512, 512]


class Lpips(torch.nn.Module):
    def __init__(self, path):
        super().__init__()
        tensors, _ = st_io.read(path)
        self.w = [tensors[f"features.{i}.weight"] for i in FEATURE_INDICES]
        self.b = [tensors[f"features.{i}.bias"] for i in FEATURE_INDICES]
        self.lin = [tensors[f"lpips_lin.{l}"] for l in range(5)]
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))

    def features(self, x01):
        x = (x01 - self.mean) / self.std
        taps, conv = [], 0
        for stage, n in enumerate(CONVS_PER_STAGE):
            if stage > 0:
                x = Fn.avg_pool2d(x, 2, 2)
            for _ in range(n):
                x = Fn.relu(Fn.conv2d(x, self.w[conv], self.b[conv], padding=1))
                conv += 1
            taps.append(x / (x.pow(2).sum(1, keepdim=True).sqrt() + 1e-10))
        return taps

    def forward(self, x01, y01):
        fx, fy = self.features(x01), self.features(y01)
        return sum(((a - b) ** 2 * w).mean((2, 3)).sum(1) for a, b, w in zip(fx, fy, self.lin))


def write_random(path, seed=0):
    """Random VGG16 + LPIPS weights (He init, positive channel weights): for benchmarks, speed does not depend on them."""
    g = torch.Generator().manual_seed(seed)
    tensors = {}
    for i, (ci, co) in zip(FEATURE_INDICES, VGG16_CONVS):
        tensors[f"features.{i}.weight"] = torch.randn(co, ci, 3, 3, generator=g) * (2 / (9 * ci)) ** 0.5
        tensors[f"features.{i}.bias"] = torch.zeros(co)
    for l, c in enumerate(STAGE_CHANNELS):
        tensors[f"lpips_lin.{l}"] = torch.rand(1, c, 1, 1, generator=g) / c
    st_io.write(path, tensors, {"note": f"random VGG16 + LPIPS weights, seed {seed}, for benchmarks only"})


if __name__ == "__main__":
    import sys
    write_random(sys.argv[1])
