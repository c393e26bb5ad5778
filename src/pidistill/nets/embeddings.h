// Noise-level embeddings of EDM: sinusoidal positional (DDPM++, ADM) and random Fourier features (NCSN++).
#pragma once
#include <torch/nn/module.h>

namespace pidistill {

// [cos(n freq), sin(n freq)] with freq_j = (1/max_positions)^(j / (C/2 - endpoint)), in n's dtype.
struct PositionalEmbedding : torch::nn::Module {
  PositionalEmbedding(int64_t num_channels, bool endpoint, double max_positions = 10000);
  at::Tensor forward(const at::Tensor& n);  // n: [N] -> [N, num_channels]
  int64_t num_channels;
  bool endpoint;
  double max_positions;
};

// [cos(2 pi freqs n), sin(2 pi freqs n)]; freqs is a buffer drawn randn * scale at init.
struct FourierEmbedding : torch::nn::Module {
  FourierEmbedding(int64_t num_channels, double scale = 16);
  at::Tensor forward(const at::Tensor& n);  // n: [N] -> [N, num_channels]
  at::Tensor freqs;                         // [num_channels / 2]
};

}  // namespace pidistill
