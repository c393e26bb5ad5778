// EDM's basic layers (training/networks.py): Linear, Conv2d with up/down resampling, GroupNorm, and the
// weight initialisation they share. Weights are registered as "weight"/"bias"/"resample_filter".
#pragma once
#include <ATen/core/Generator.h>
#include <torch/nn/module.h>

#include <string>
#include <vector>

namespace pidistill {

// How a layer draws its initial weights: weight_init(mode) * init_weight, bias weight_init(mode) * init_bias.
struct InitOptions {
  std::string init_mode = "kaiming_normal";  // xavier_uniform | xavier_normal | kaiming_uniform | kaiming_normal
  double init_weight = 1;                    // Scale of the initial weight.
  double init_bias = 0;                      // Scale of the initial bias.
};

// While alive, layers built on this thread put their parameters on the meta device: shapes without memory,
// so a config's size can be known before anything is allocated (unet_tensor_elements).
struct MetaParameters {
  MetaParameters();
  ~MetaParameters();
  MetaParameters(const MetaParameters&) = delete;
  MetaParameters& operator=(const MetaParameters&) = delete;

 private:
  bool previous_;
};
// The options of a new parameter: the meta device inside MetaParameters, else the default (CPU float32).
at::TensorOptions parameter_options();

// EDM's weight_init: draws from torch's default generator (seeded by the caller), float32.
at::Tensor weight_init(at::IntArrayRef shape, const std::string& mode, int64_t fan_in, int64_t fan_out);

// Inverted dropout as torch's F.dropout (Bernoulli(1-p) mask / (1-p)), drawing from `generator` if given.
at::Tensor dropout(const at::Tensor& x, double p, bool training, const c10::optional<at::Generator>& generator);

struct Linear : torch::nn::Module {
  Linear(int64_t in_features, int64_t out_features, bool bias, const InitOptions& init);
  at::Tensor forward(const at::Tensor& x);  // x: [N, in] -> [N, out]
  int64_t in_features, out_features;
  at::Tensor weight, bias;  // weight: [out, in]; bias: [out] or undefined
};

struct Conv2dOptions {
  int64_t kernel = 3;                      // 0 = no weight: pure resampling.
  bool bias = true;                        // Whether a bias is added (only with a weight).
  bool up = false, down = false;           // 2x upsampling / downsampling around the convolution.
  std::vector<int> resample_filter = {1, 1};  // 1-D taps of the separable resampling filter.
  bool fused_resample = false;             // Down: convolve first, then resample (NCSN++ aux_residual).
  InitOptions init;
};

struct Conv2d : torch::nn::Module {
  Conv2d(int64_t in_channels, int64_t out_channels, const Conv2dOptions& options);
  at::Tensor forward(const at::Tensor& x);  // x: [N, in, H, W] -> [N, out, H', W']
  int64_t in_channels, out_channels;
  Conv2dOptions options;
  at::Tensor weight, bias, resample_filter;  // [out, in, k, k], [out], [1, 1, K, K] (each may be undefined)
};

struct GroupNorm : torch::nn::Module {
  // num_groups = min(num_groups, num_channels / min_channels_per_group), as EDM.
  GroupNorm(int64_t num_channels, double eps, int64_t num_groups = 32, int64_t min_channels_per_group = 4);
  at::Tensor forward(const at::Tensor& x);
  int64_t num_groups;
  double eps;
  at::Tensor weight, bias;  // [C] each
};

}  // namespace pidistill
