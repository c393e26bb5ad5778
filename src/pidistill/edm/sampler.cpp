#include "pidistill/edm/sampler.h"

#include "pidistill/edm/karras.h"
#include "pidistill/util/error.h"

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>  // at::NoGradGuard; ATen.h does not bring it in LibTorch 2.x

#include <algorithm>
#include <cmath>

namespace pidistill {

Solver solver_from_string(const std::string& name) {
  if (name == "heun") return Solver::Heun;
  if (name == "euler") return Solver::Euler;
  fail("--solver", "unknown solver '" + name + "'; hint: use heun or euler");
}

double churn_gamma(const SamplerConfig& config, double t_cur) {
  if (!(config.S_min <= t_cur && t_cur <= config.S_max)) return 0;
  return std::min(config.S_churn / config.num_steps, std::sqrt(2.0) - 1);
}

// D(x, sigma) as both samplers call it: float64 x, a 0-dim float64 sigma, the result in float64.
static at::Tensor denoise_f64(Denoiser& denoiser, const at::Tensor& x, double sigma,
                              const at::Tensor& class_labels) {
  return denoiser.denoise(x, at::scalar_tensor(sigma, x.options().dtype(at::kDouble)), class_labels)
      .to(at::kDouble);
}

int sampler_nfe(const SamplerConfig& config) {
  return config.solver == Solver::Heun ? 2 * config.num_steps - 1 : config.num_steps;
}

at::Tensor edm_sampler(Denoiser& denoiser, const at::Tensor& latents, const at::Tensor& class_labels,
                       const SamplerConfig& config, at::Generator* generator,
                       std::vector<at::Tensor>* trajectory) {
  if (!latents.defined() || latents.dim() < 2)
    fail("latents", "expected a batch [B, ...] of standard-normal latents");
  if (config.S_churn < 0) fail("--S-churn", "must be >= 0");
  if (config.S_churn > 0 && generator == nullptr)
    fail("sampler", "S_churn > 0 needs a generator for the churn noise");
  // Why: EDM clips the requested range to what the network supports.
  double sigma_min = std::max(config.sigma_min, denoiser.sigma_min());
  double sigma_max = std::min(config.sigma_max, denoiser.sigma_max());
  auto t_steps = karras_sigmas(config.num_steps, sigma_min, sigma_max, config.rho);  // [N + 1] f64
  auto t = t_steps.accessor<double, 1>();
  auto denoise = [&](const at::Tensor& x, double sigma) {
    return denoise_f64(denoiser, x, sigma, class_labels);
  };

  at::NoGradGuard no_grad;
  auto x_next = latents.to(at::kDouble) * t[0];  // x_0: [B, C, H, W]
  for (int i = 0; i < config.num_steps; ++i) {
    double t_cur = t[i], t_next = t[i + 1];
    auto x_cur = x_next;
    if (trajectory) trajectory->push_back(x_cur);

    // Increase noise temporarily (churn); skipped entirely when gamma = 0 so x_hat is x_cur bit for bit.
    double gamma = churn_gamma(config, t_cur);
    double t_hat = t_cur + gamma * t_cur;
    at::Tensor x_hat = x_cur;
    if (gamma > 0) {
      auto noise = at::randn(x_cur.sizes(), *generator, x_cur.options());  // [B, C, H, W]
      x_hat = x_cur + std::sqrt(t_hat * t_hat - t_cur * t_cur) * config.S_noise * noise;
    }

    // Euler step.
    auto denoised = denoise(x_hat, t_hat);
    auto d_cur = (x_hat - denoised) / t_hat;
    x_next = x_hat + (t_next - t_hat) * d_cur;

    // 2nd order correction, except at the last step to sigma = 0.
    if (config.solver == Solver::Heun && i < config.num_steps - 1) {
      denoised = denoise(x_next, t_next);
      auto d_prime = (x_next - denoised) / t_next;
      x_next = x_hat + (t_next - t_hat) * (0.5 * d_cur + 0.5 * d_prime);
    }
  }
  if (trajectory) trajectory->push_back(x_next);
  return x_next;
}

std::vector<at::Tensor> heun_at_times(Denoiser& denoiser, const at::Tensor& latents,
                                      const at::Tensor& class_labels, const std::vector<double>& times,
                                      int substeps, double rho) {
  if (times.empty()) fail("--times", "need at least one time");
  if (substeps < 1) fail("--substeps", "must be at least 1");
  for (size_t i = 0; i < times.size(); ++i)
    if (!(times[i] > 0 && std::isfinite(times[i])) || (i > 0 && !(times[i] < times[i - 1])))
      fail("--times", "times must be positive, finite and decreasing");
  auto denoise = [&](const at::Tensor& x, double sigma) {
    return denoise_f64(denoiser, x, sigma, class_labels);
  };
  at::NoGradGuard no_grad;
  at::Tensor x = latents.to(at::kDouble) * times[0];  // [B, C, H, W]
  std::vector<at::Tensor> states = {x};
  for (size_t k = 0; k + 1 < times.size(); ++k) {
    // The sub-grid: Karras points from times[k] down to times[k + 1] (its last point is dropped: it is 0).
    auto sub = karras_sigmas(substeps + 1, times[k + 1], times[k], rho);  // [substeps + 2]
    auto t = sub.accessor<double, 1>();
    for (int i = 0; i < substeps; ++i) {
      const double t_cur = t[i], t_next = t[i + 1];
      auto d_cur = (x - denoise(x, t_cur)) / t_cur;
      auto x_euler = x + (t_next - t_cur) * d_cur;
      auto d_prime = (x_euler - denoise(x_euler, t_next)) / t_next;
      x = x + (t_next - t_cur) * (0.5 * d_cur + 0.5 * d_prime);
    }
    states.push_back(x);
  }
  return states;
}

}  // namespace pidistill
