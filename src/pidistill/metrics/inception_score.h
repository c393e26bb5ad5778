// The Inception Score (Salimans et al. 2016) as StyleGAN3's metrics compute it from class probabilities.
#pragma once
#include <ATen/core/Tensor.h>

namespace pidistill {

struct ScoreMeanStd {
  double mean = 0, std = 0;  // over the splits; std with divisor n (numpy's default)
};

// probs: [N, K], rows sum to 1. Per split of N / splits consecutive rows: exp(mean_rows(KL(p || mean_split(p)))).
// Error if N < splits.
ScoreMeanStd inception_score(const at::Tensor& probs, int splits = 10);

}  // namespace pidistill
