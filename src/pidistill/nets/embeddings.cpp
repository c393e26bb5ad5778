#include "pidistill/nets/embeddings.h"

#include "pidistill/nets/layers.h"

#include <ATen/ATen.h>

#include <cmath>

namespace pidistill {

PositionalEmbedding::PositionalEmbedding(int64_t channels, bool endpoint_, double max_pos)
    : num_channels(channels), endpoint(endpoint_), max_positions(max_pos) {}

at::Tensor PositionalEmbedding::forward(const at::Tensor& n) {
  // Why: EDM builds this table in float32 always; we build it in n's dtype so float64 is pure float64.
  auto freqs = at::arange(0, num_channels / 2, n.options());  // freqs: [C/2]
  freqs = freqs / (num_channels / 2 - (endpoint ? 1 : 0));
  freqs = at::pow(1 / max_positions, freqs);
  auto x = at::outer(n, freqs);  // x: [N, C/2]
  return at::cat({x.cos(), x.sin()}, 1);
}

FourierEmbedding::FourierEmbedding(int64_t channels, double scale) {
  freqs = register_buffer("freqs", at::randn({channels / 2}, parameter_options()) * scale);
}

at::Tensor FourierEmbedding::forward(const at::Tensor& n) {
  auto x = at::outer(n, (2 * M_PI * freqs).to(n.scalar_type()));  // x: [N, C/2]
  return at::cat({x.cos(), x.sin()}, 1);
}

}  // namespace pidistill
