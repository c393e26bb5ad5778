// Inception Score in float64 over consecutive splits, as StyleGAN3's metrics/inception_score.py.
#include "pidistill/metrics/inception_score.h"

#include "pidistill/util/error.h"

#include <ATen/ATen.h>

#include <cmath>
#include <vector>

namespace pidistill {

ScoreMeanStd inception_score(const at::Tensor& probs, int splits) {
  const char* where = "inception_score";
  if (probs.dim() != 2) fail(where, "probs must be [N, K], got " + std::to_string(probs.dim()) + " dims");
  const int64_t n = probs.size(0);
  if (splits < 1 || n < splits)
    fail(where,
         std::to_string(n) + " rows for " + std::to_string(splits) + " splits (need 1 <= splits <= N)");
  const at::Tensor p = probs.to(at::kCPU, at::kDouble);  // [N, K]
  std::vector<double> scores;
  for (int64_t i = 0; i < splits; ++i) {
    // StyleGAN3's bounds: rows [i N // splits, (i + 1) N // splits).
    const at::Tensor part = p.slice(0, i * n / splits, (i + 1) * n / splits);  // [n_i, K]
    const at::Tensor py = part.mean(0, /*keepdim=*/true);                      // [1, K]
    // Why xlogy: p = 0 contributes 0 (0 log 0 = 0), where p * log(p) would give NaN.
    const at::Tensor kl = at::xlogy(part, part) - at::xlogy(part, py);  // [n_i, K]
    scores.push_back(std::exp(kl.sum(1).mean().item<double>()));
  }
  ScoreMeanStd r;
  for (double s : scores) r.mean += s;
  r.mean /= static_cast<double>(scores.size());
  for (double s : scores) r.std += (s - r.mean) * (s - r.mean);
  r.std = std::sqrt(r.std / static_cast<double>(scores.size()));
  return r;
}

}  // namespace pidistill
