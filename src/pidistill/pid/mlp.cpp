#include "pidistill/pid/mlp.h"

#include "pidistill/util/error.h"

#include <torch/torch.h>

#include <cmath>

namespace pidistill {

Mlp::Mlp(const MlpConfig& c) : mlp_config(c) {
  if (c.dim < 1 || c.hidden < 1 || c.layers < 1 || c.time_features < 2 || c.time_features % 2)
    fail("mlp", "dim, hidden, layers must be >= 1 and time_features a positive even number");
  config.model_type = "MLP";
  config.img_channels = c.dim;
  config.img_resolution = 1;
  config.label_dim = c.label_dim;
  int in = c.dim + c.time_features + c.label_dim;
  for (int l = 0; l <= c.layers; ++l) {
    const int out = l == c.layers ? c.dim : c.hidden;
    linears_.push_back(register_module("layer" + std::to_string(l), torch::nn::Linear(in, out)));
    in = out;
  }
}

at::Tensor Mlp::forward(const at::Tensor& x, const at::Tensor& noise_labels, const at::Tensor& class_labels,
                        const at::Tensor&) {
  const int64_t B = x.size(0);
  const int half = mlp_config.time_features / 2;
  // Geometric frequencies 1..2^(half-1): c_noise = ln(t)/4 spans about [-1.6, 1.1].
  auto freqs = at::pow(2.0, at::arange(half, x.options()));                         // freqs: [half]
  auto angle = noise_labels.to(x.dtype()).reshape({-1, 1}).expand({B, 1}) * freqs;  // angle: [B, half]
  std::vector<at::Tensor> inputs = {x.reshape({B, -1}), at::sin(angle), at::cos(angle)};
  if (mlp_config.label_dim > 0) {
    inputs.push_back(class_labels.defined() ? class_labels.to(x.dtype()).reshape({B, -1})
                                            : at::zeros({B, mlp_config.label_dim}, x.options()));
  }
  auto h = at::cat(inputs, 1);  // h: [B, D + time_features + label_dim]
  for (size_t l = 0; l < linears_.size(); ++l) {
    h = linears_[l]->forward(h);
    if (l + 1 < linears_.size()) h = at::silu(h);
  }
  return h.reshape(x.sizes());
}

}  // namespace pidistill
