#include "pidistill/pid/index_sampling.h"

#include "pidistill/util/error.h"

#include <ATen/ATen.h>

namespace pidistill {

IndexSampling index_sampling_from_string(const std::string& name) {
  if (name == "uniform") return IndexSampling::Uniform;
  if (name == "loss") return IndexSampling::Loss;
  fail("--index-sampling", "unknown sampling '" + name + "' (expected uniform or loss)");
}

at::Tensor IndexSampler::probabilities(const PidGrid& grid) const {
  validate(grid);
  const int64_t n = grid.last_index_backward ? grid.N : grid.N - 1;
  std::array<int64_t, kLossBins> n_b{};
  for (int64_t i = 0; i < n; ++i) ++n_b[loss_bin(i, grid.N)];
  // Why only occupied bins: a grid with fewer than 8 points (or without its last index) leaves bins empty,
  // and their share would otherwise be lost from the distribution.
  std::array<double, kLossBins> w = loss_ema;
  double total = 0;
  for (int b = 0; b < kLossBins; ++b)
    if (n_b[b] > 0) total += w[b];
  if (!(total > 0)) {  // every occupied bin's loss is exactly 0: nothing to favour, draw uniformly
    w.fill(1);
    total = 0;
    for (int b = 0; b < kLossBins; ++b)
      if (n_b[b] > 0) total += 1;
  }
  auto p = at::empty({n}, at::kDouble);  // [n]
  double* pp = p.data_ptr<double>();
  for (int64_t i = 0; i < n; ++i) {
    const int b = loss_bin(i, grid.N);
    pp[i] = 0.5 / static_cast<double>(n) + 0.5 * (w[b] / total) / static_cast<double>(n_b[b]);
  }
  return p;
}

IndexDraw IndexSampler::draw(int64_t batch, const PidGrid& grid, at::Generator& generator) const {
  IndexDraw d;
  if (mode == IndexSampling::Uniform) {
    d.indices = sample_indices(batch, grid, generator);
    return d;
  }
  const at::Tensor p = probabilities(grid);  // [n]
  const int64_t n = p.size(0);
  auto cdf = p.cumsum(0);                                                         // [n]
  auto u = at::rand({batch}, generator, at::TensorOptions().dtype(at::kDouble));  // [B] in [0, 1)
  // Why the clamp: rounding can leave cdf[n-1] a hair below 1, and a u above it must still map to n-1.
  d.indices = at::searchsorted(cdf, u, /*out_int32=*/false, /*right=*/true).clamp_max(n - 1);  // [B]
  d.weights = (1.0 / static_cast<double>(n)) / p.index_select(0, d.indices);                   // [B]
  return d;
}

void IndexSampler::update(const LossBinTally& step_tally) {
  if (mode == IndexSampling::Uniform) return;
  for (int b = 0; b < kLossBins; ++b)
    if (step_tally.count[b] > 0) loss_ema[b] = rate * loss_ema[b] + (1 - rate) * step_tally.mean(b);
}

at::Tensor IndexSampler::state() const {
  auto t = at::empty({kLossBins}, at::kDouble);  // [kLossBins]
  for (int b = 0; b < kLossBins; ++b) t.data_ptr<double>()[b] = loss_ema[b];
  return t;
}

void IndexSampler::load_state(const at::Tensor& state, const std::string& where) {
  if (state.dim() != 1 || state.size(0) != kLossBins)
    fail(where, "expected " + std::to_string(kLossBins) + " per-bin loss averages");
  auto s = state.to(at::kCPU, at::kDouble).contiguous();
  for (int b = 0; b < kLossBins; ++b) loss_ema[b] = s.data_ptr<double>()[b];
}

}  // namespace pidistill
