// How a training step draws its grid indices (--index-sampling): uniform, the paper's draw, or loss: half
// uniform, half toward the noise levels whose loss is largest, importance-weighted so the objective is
// unchanged.
#pragma once
#include "pidistill/pid/loss_bins.h"
#include "pidistill/pid/pid_grid.h"

#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>

#include <array>
#include <cstdint>
#include <string>

namespace pidistill {

enum class IndexSampling { Uniform, Loss };
IndexSampling index_sampling_from_string(const std::string& name);  // "uniform" | "loss"; Error otherwise

struct IndexDraw {
  at::Tensor indices;  // int64 [B]
  at::Tensor weights;  // float64 [B]: (1/n) / p(i), the importance weight of each sample; undefined = all 1
};

struct IndexSampler {
  IndexSampling mode = IndexSampling::Uniform;
  double rate = 0.99;  // EMA rate of the per-bin mean losses, per step.
  // Why 1: equal weights to start with, so the first draws are uniform until losses have been seen.
  std::array<double, kLossBins> loss_ema{1, 1, 1, 1, 1, 1, 1, 1};

  // Uniform: sample_indices (the same draws from `generator` as the paper's recipe), no weights.
  // Loss: one uniform double per sample from `generator`, inverted through the CDF of probabilities().
  IndexDraw draw(int64_t batch, const PidGrid& grid, at::Generator& generator) const;

  // p(i) over the indices the grid draws from (n = N, or N-1 without the backward pairing), float64 [n]:
  // 0.5/n + 0.5 w_b(i)/n_b(i), w = loss_ema normalised over the bins holding indices, n_b = indices in bin b.
  at::Tensor probabilities(const PidGrid& grid) const;

  // After a finite step: each bin that got samples moves its EMA toward their mean loss. No-op for uniform.
  void update(const LossBinTally& step_tally);

  at::Tensor state() const;  // loss_ema as float64 [kLossBins], for checkpoints
  void load_state(const at::Tensor& state, const std::string& where);  // Error naming `where` if misshapen
};

}  // namespace pidistill
