// The exact EDM denoiser of a diagonal Gaussian mixture: each component stays Gaussian under noise, so
// E[x0 | x] is a responsibility-weighted sum of per-component Wiener filters.
#include "pidistill/edm/gaussian_mixture.h"

#include "pidistill/util/error.h"

#include <ATen/ATen.h>

#include <cmath>

namespace pidistill {
namespace {

// sigma as one value per row: [B] in x's dtype and device.
at::Tensor sigma_per_row(const at::Tensor& sigma, int64_t B, const at::TensorOptions& opts) {
  if (!sigma.defined()) fail("GaussianMixture", "sigma is undefined");
  at::Tensor s = sigma.to(opts).reshape({-1});
  if (s.numel() == 1) return s.expand({B});
  if (s.numel() != B)
    fail("GaussianMixture", "sigma has " + std::to_string(s.numel()) + " values for a batch of " + std::to_string(B));
  return s;
}

}  // namespace

GaussianMixture::GaussianMixture(const at::Tensor& w, const at::Tensor& mu, const at::Tensor& s) {
  if (!w.defined() || !mu.defined() || !s.defined()) fail("GaussianMixture", "weights, means and stds are required");
  if (w.dim() != 1 || w.numel() < 1) fail("GaussianMixture", "weights must be [K], got " + c10::str(w.sizes()));
  const int64_t K = w.size(0);
  if (mu.dim() < 2 || mu.size(0) != K)
    fail("GaussianMixture", "means must be [K, D] or [K, C, H, W] with K = " + std::to_string(K) + ", got " +
                                c10::str(mu.sizes()));
  sample_shape = mu.sizes().slice(1).vec();
  const int64_t D = mu[0].numel();
  weights = w.to(at::kDouble).cpu();
  means = mu.to(at::kDouble).cpu().reshape({K, D});
  at::Tensor sd = s.to(at::kDouble).cpu();
  if (sd.dim() == 1 && sd.size(0) == K) {
    sd = sd.unsqueeze(1).expand({K, D});  // isotropic
  } else if (sd.numel() == K * D && sd.size(0) == K) {
    sd = sd.reshape({K, D});
  } else {
    fail("GaussianMixture", "stds must be [K], [K, D] or the means' shape " + c10::str(mu.sizes()) + ", got " +
                                c10::str(s.sizes()));
  }
  stds = sd.contiguous();
  if (!(weights >= 0).all().item<bool>() || !(weights.sum().item<double>() > 0))
    fail("GaussianMixture", "weights must be non-negative with a positive sum");
  if (!(stds > 0).all().item<bool>()) fail("GaussianMixture", "stds must be positive");
  if (!at::isfinite(means).all().item<bool>()) fail("GaussianMixture", "means must be finite");
  weights = weights / weights.sum();
}

int64_t GaussianMixture::num_components() const { return weights.size(0); }
int64_t GaussianMixture::dim() const { return means.size(1); }

// log(w_k N(x; mu_k, diag(s_k^2 + sigma^2))): [B, K], plus the pieces denoise reuses.
static at::Tensor component_log_probs(const GaussianMixture& gm, const at::Tensor& x, const at::Tensor& sigma,
                                      at::Tensor* diff_out, at::Tensor* var_out) {
  if (x.dim() < 2 || x[0].numel() != gm.dim())
    fail("GaussianMixture", "x must be [B, " + std::to_string(gm.dim()) + "] or [B, ...sample shape], got " +
                                c10::str(x.sizes()));
  const int64_t B = x.size(0);
  auto opts = x.options();
  at::Tensor xf = x.reshape({B, 1, gm.dim()});                             // x: [B, 1, D]
  at::Tensor mu = gm.means.to(opts).unsqueeze(0);                          // mu: [1, K, D]
  at::Tensor s2 = gm.stds.to(opts).pow(2).unsqueeze(0);                    // s^2: [1, K, D]
  at::Tensor sig = sigma_per_row(sigma, B, opts).view({B, 1, 1});          // sigma: [B, 1, 1]
  at::Tensor var = s2 + sig * sig;                                         // [B, K, D]
  at::Tensor diff = xf - mu;                                               // [B, K, D]
  at::Tensor log_w = gm.weights.to(opts).log().unsqueeze(0);               // [1, K]
  at::Tensor logp = log_w - 0.5 * (diff * diff / var + at::log(2 * M_PI * var)).sum(2);  // [B, K]
  if (diff_out) *diff_out = diff;
  if (var_out) *var_out = var;
  return logp;
}

at::Tensor GaussianMixture::denoise(const at::Tensor& x, const at::Tensor& sigma, const at::Tensor&) {
  at::Tensor diff, var;
  at::Tensor logp = component_log_probs(*this, x, sigma, &diff, &var);
  at::Tensor r = at::softmax(logp, 1).unsqueeze(2);                         // r: [B, K, 1], log-sum-exp inside
  at::Tensor s2 = stds.to(x.options()).pow(2).unsqueeze(0);                 // [1, K, D]
  at::Tensor mu = means.to(x.options()).unsqueeze(0);                       // [1, K, D]
  at::Tensor D_k = mu + s2 / var * diff;                                    // per-component E[x0 | x]: [B, K, D]
  return (r * D_k).sum(1).reshape(x.sizes());
}

at::Tensor GaussianMixture::log_density(const at::Tensor& x, const at::Tensor& sigma) const {
  return at::logsumexp(component_log_probs(*this, x, sigma, nullptr, nullptr), {1});  // [B]
}

at::Tensor GaussianMixture::responsibilities(const at::Tensor& x, const at::Tensor& sigma) const {
  return at::softmax(component_log_probs(*this, x, sigma, nullptr, nullptr), 1);  // [B, K]
}

at::Tensor GaussianMixture::sample(int64_t n, at::Generator& generator, at::ScalarType dtype) const {
  if (n < 0) fail("GaussianMixture", "sample count must be >= 0");
  at::Tensor k = at::multinomial(weights, n, /*replacement=*/true, generator);  // [n]
  at::Tensor z = at::randn({n, dim()}, generator, at::kDouble);                  // [n, D]
  at::Tensor x = means.index_select(0, k) + stds.index_select(0, k) * z;         // [n, D]
  std::vector<int64_t> shape{n};
  shape.insert(shape.end(), sample_shape.begin(), sample_shape.end());
  return x.reshape(shape).to(dtype);
}

at::Tensor GaussianMixture::component_of(const at::Tensor& x) const {
  at::Tensor zero = at::zeros({}, x.options());
  return std::get<1>(component_log_probs(*this, x, zero, nullptr, nullptr).max(1));  // [B]
}

}  // namespace pidistill
