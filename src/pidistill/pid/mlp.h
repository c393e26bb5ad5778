// A small MLP with UNet's forward signature, F(x, c_noise [, class]) for vector data: the student network of
// the analytic Gaussian-mixture test, where a U-Net would be pointless.
#pragma once
#include "pidistill/nets/unet.h"

#include <torch/nn/modules/linear.h>

#include <memory>
#include <vector>

namespace pidistill {

struct MlpConfig {
  int dim = 2;             // Data dimensionality D: x is [B, D].
  int hidden = 128;        // Width of every hidden layer.
  int layers = 3;          // Number of hidden layers.
  int time_features = 16;  // Sinusoidal features of c_noise (half sin, half cos), concatenated to x.
  int label_dim = 0;       // One-hot class labels concatenated to the input, 0 = unconditional.
};

struct Mlp : UNet {
  MlpConfig mlp_config;
  explicit Mlp(const MlpConfig& config);  // PyTorch's default Linear init; seed with torch::manual_seed
  at::Tensor forward(const at::Tensor& x, const at::Tensor& noise_labels, const at::Tensor& class_labels = {},
                     const at::Tensor& augment_labels = {}) override;

 private:
  std::vector<torch::nn::Linear> linears_;
};

}  // namespace pidistill
