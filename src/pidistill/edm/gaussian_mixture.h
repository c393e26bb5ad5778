// A closed-form teacher: data from a Gaussian mixture, whose exact EDM denoiser D(x, sigma) = E[x0 | x]
// lets tests check samplers and distillation against ground truth.
#pragma once
#include "pidistill/edm/denoiser.h"

#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>

#include <vector>

namespace pidistill {

struct GaussianMixture : Denoiser {
  at::Tensor weights;  // w: [K], non-negative, normalised to sum 1 by the constructor
  at::Tensor means;    // mu: [K, D]
  at::Tensor stds;     // s: [K, D] per-dimension standard deviations (diagonal covariances)
  std::vector<int64_t> sample_shape;  // shape of one sample, e.g. {D} or {C, H, W}; its product is D

  // weights [K]; means [K, D] or [K, C, H, W]; stds [K] (isotropic), [K, D] or [K, C, H, W]. Stored as float64.
  // Throws Error on mismatched shapes, negative weights or non-positive stds.
  GaussianMixture(const at::Tensor& weights, const at::Tensor& means, const at::Tensor& stds);

  // x: [B, D] or [B, ...sample_shape]; sigma: [B], [B, 1, ...] or 0-dim. Returns E[x0 | x] in x's dtype:
  // sum_k r_k(x) (mu_k + s_k^2 / (s_k^2 + sigma^2) (x - mu_k)), r_k from N(x; mu_k, s_k^2 + sigma^2), log-sum-exp.
  at::Tensor denoise(const at::Tensor& x, const at::Tensor& sigma, const at::Tensor& class_labels = {}) override;

  // log p_sigma(x), the density of x0 + sigma n: [B], in x's dtype.
  at::Tensor log_density(const at::Tensor& x, const at::Tensor& sigma) const;
  // Responsibilities r_k(x) under noise level sigma: [B, K].
  at::Tensor responsibilities(const at::Tensor& x, const at::Tensor& sigma) const;
  // n exact samples of the data distribution, [n, ...sample_shape], float64 unless dtype says otherwise.
  at::Tensor sample(int64_t n, at::Generator& generator, at::ScalarType dtype = at::kDouble) const;
  // The most responsible component of each x (at sigma = 0): [B] int64.
  at::Tensor component_of(const at::Tensor& x) const;

  int64_t num_components() const;
  int64_t dim() const;
};

}  // namespace pidistill
