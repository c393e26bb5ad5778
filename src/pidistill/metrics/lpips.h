// piq 0.7.0's LPIPS: VGG16 features (max-pool replaced by average pooling), unit-normalised along channels,
// squared differences weighted per channel, averaged over space. PID's perceptual distance.
#pragma once
#include "pidistill/io/safetensors.h"

#include <ATen/core/Tensor.h>

#include <string>
#include <vector>

namespace pidistill {

struct Lpips {
  // The 13 VGG16 convolutions of torchvision's `features`, in order: weight [Co, Ci, 3, 3] and bias [Co].
  std::vector<at::Tensor> conv_weight, conv_bias;
  std::vector<at::Tensor> lin;  // the 5 per-channel LPIPS weights, each [1, C, 1, 1]

  // A file holding both parts: `features.<idx>.weight/bias` (torchvision indices 0, 2, 5, ... 28) and
  // `lpips_lin.<l>` (l = 0..4), as safetensors or torch.save. Missing weights -> Error saying how to get them.
  static Lpips load(const std::string& path);
  // torchvision's vgg16 state dict (keys `features.N.weight`, `classifier.*` ignored) and piq's
  // lpips_weights.pt (a list of 5 tensors), each safetensors or torch.save.
  static Lpips load(const std::string& vgg_path, const std::string& lin_path);
  // The synthetic weights of the golden README (section 5.2), regenerated bit-exactly in float32.
  static Lpips synthetic();

  // Names as the combined file stores them: features.<idx>.weight/bias, lpips_lin.<l>.
  NamedTensors named_tensors() const;
  // A copy with every weight on `device` in `dtype`; operator() casts on the fly when they differ from the input.
  Lpips to(at::Device device, at::ScalarType dtype) const;

  // x01, y01: [N, 3, H, W] in [0, 1] (not checked, as piq). Returns [N]. Differentiable in x01 and y01.
  at::Tensor operator()(const at::Tensor& x01, const at::Tensor& y01) const;
  // The five per-layer terms, [N, 5]; they sum to operator()'s result.
  at::Tensor per_layer(const at::Tensor& x01, const at::Tensor& y01) const;
  // Every channel's term, layers concatenated: [N, 1472]. operator() is its sum over dim 1 and per_layer
  // the sums of its 64, 128, 256, 512, 512-wide blocks; one forward pass serves both.
  at::Tensor channel_terms(const at::Tensor& x01, const at::Tensor& y01) const;
};

// PID's resize rule: images narrower than 256 are resized bilinearly to 224x224 (align_corners false,
// no antialias); others pass unchanged. x: [N, C, H, W] -> [N, C, 224, 224].
at::Tensor upsample_for_lpips(const at::Tensor& x);

// LPIPS as PID's loss calls it: a, b in [-1, 1], [N, 3, H, W]; upsample_for_lpips, map (x + 1) / 2, LPIPS -> [N].
at::Tensor lpips_distance(const Lpips& lpips, const at::Tensor& a, const at::Tensor& b);

// The error message for a missing or incomplete weights file, with the way to obtain and convert them.
std::string lpips_weights_hint();

}  // namespace pidistill
