// Fréchet distance between Gaussians fitted to detector features (FID's formula, EDM's fid.py), and the
// float64 running mean/covariance of features that it is computed from, so no image set is ever held whole.
#pragma once
#include "pidistill/io/safetensors.h"

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>

namespace pidistill {

struct FeatureStats {
  at::Tensor mu;      // [D] float64
  at::Tensor sigma;   // [D, D] float64, covariance with the n - 1 divisor (np.cov(rowvar=False))
  int64_t count = 0;  // samples the statistics were computed from (0 = unknown, e.g. read from a foreign npz)
};

// Accumulates sum(x) and sum(x x^T) in float64 over batches of features [N, D].
class StatsAccumulator {
 public:
  explicit StatsAccumulator(int64_t dim);
  void add(const at::Tensor& features);  // [N, D], any floating dtype; Error if D differs
  int64_t count() const { return count_; }
  int64_t dim() const { return dim_; }
  FeatureStats stats() const;  // Error if fewer than two samples

 private:
  int64_t dim_, count_ = 0;
  at::Tensor sum_, sum_outer_;  // [D], [D, D] float64
};

// |mu_a - mu_b|^2 + tr(sigma_a + sigma_b - 2 sqrtm(sigma_a sigma_b)) in float64. The trace of the matrix
// square root is taken from the eigenvalues of sqrt(sigma_a) sigma_b sqrt(sigma_a) (symmetric, so exact for
// singular covariances too, where scipy's sqrtm needs its real part). Error naming `where` if the shapes
// differ.
double frechet_distance(const FeatureStats& a, const FeatureStats& b, const std::string& where = "");

// EDM's reference-statistics file: npz with float64 `mu` [D], `sigma` [D, D] (and `count` when we wrote it).
FeatureStats read_stats_npz(const std::string& path);
void write_stats_npz(const std::string& path, const FeatureStats& stats);
// The same on arrays already read / about to be written (files holding more arrays, e.g. features); `path`
// names errors.
FeatureStats stats_from_arrays(const NamedTensors& arrays, const std::string& path);
NamedTensors stats_to_arrays(const FeatureStats& stats, const std::string& path);

}  // namespace pidistill
