// The raw network F(x, noise_labels, class_labels, augment_labels) that every preconditioner wraps.
#pragma once
#include "pidistill/nets/net_config.h"

#include <ATen/core/Generator.h>
#include <torch/nn/module.h>

#include <memory>

namespace pidistill {

struct UNet : torch::nn::Module {
  NetConfig config;
  // Draws dropout and label-dropout masks in training mode; nullopt = torch's default generator.
  c10::optional<at::Generator> generator;
  // x: [B, C, H, W]; noise_labels: [B] or [1] (broadcast over the batch);
  // class_labels: [B, label_dim] or undefined; augment_labels: [B, augment_dim] or undefined.
  // Computes in x's dtype; the module must have been moved to that dtype.
  virtual at::Tensor forward(const at::Tensor& x, const at::Tensor& noise_labels,
                             const at::Tensor& class_labels = {},
                             const at::Tensor& augment_labels = {}) = 0;
};

// SongUNet or DhariwalUNet, parameters registered under EDM's names without the 'model.' prefix
// (e.g. "enc.16x16_conv.weight"), initialised as EDM initialises them (seeded by the caller via torch::manual_seed).
std::shared_ptr<UNet> make_unet(const NetConfig& config);

// Elements of the parameters and buffers make_unet(config) would allocate, counted on the meta device without
// allocating them (milliseconds, any size): a file must hold at least this many before its network is built.
int64_t unet_tensor_elements(const NetConfig& config);

}  // namespace pidistill
