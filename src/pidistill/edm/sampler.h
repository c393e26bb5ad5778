// EDM's samplers (Karras et al. 2022, Algorithm 2): Heun's 2nd-order method or Euler on the probability-flow
// ODE, with optional stochastic churn; they see the model only through the Denoiser interface.
// Stable API (see pidistill/pidistill.h): SamplerConfig, Solver, solver_from_string (the rest is internal).
#pragma once
#include "pidistill/edm/denoiser.h"

#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

namespace pidistill {

enum class Solver { Heun, Euler };
Solver solver_from_string(const std::string& name);  // "heun" | "euler"; Error otherwise

struct SamplerConfig {
  int num_steps = 18;        // Number of time steps (Heun: 2 * num_steps - 1 denoiser calls).
  double sigma_min = 0.002;  // Lowest noise level; raised to the denoiser's own sigma_min if larger.
  double sigma_max = 80;     // Highest noise level; lowered to the denoiser's own sigma_max if smaller.
  double rho = 7;            // Time step exponent: larger rho spends more steps at low noise.
  double S_churn = 0;        // Stochasticity strength; 0 = deterministic.
  double S_min = 0;          // Churn only for t in [S_min, S_max].
  double S_max = std::numeric_limits<double>::infinity();
  double S_noise = 1;  // Scale of the noise added by churn (>1 compensates detail loss).
  Solver solver = Solver::Heun;
};

// Samples from standard-normal latents [B, C, H, W]: x_0 = latents * t_0, then num_steps solver steps down to
// 0. Computes in float64 like EDM and returns float64; the denoiser sees float64 x and a 0-dim float64 sigma.
// class_labels: [B, label_dim] one-hot or undefined. `generator` draws the churn noise (required when S_churn
// > 0). `trajectory`, if given, receives x_0 .. x_{N-1} (the states entering each step) and the final x.
at::Tensor edm_sampler(Denoiser& denoiser, const at::Tensor& latents, const at::Tensor& class_labels,
                       const SamplerConfig& config, at::Generator* generator = nullptr,
                       std::vector<at::Tensor>* trajectory = nullptr);

// EDM's deterministic 2nd-order sampler with the given schedule (S_churn etc. honoured if set in config).
inline at::Tensor heun_sample(Denoiser& denoiser, const at::Tensor& latents, const at::Tensor& class_labels,
                              SamplerConfig config = {}, at::Generator* generator = nullptr) {
  config.solver = Solver::Heun;
  return edm_sampler(denoiser, latents, class_labels, config, generator);
}

// 1st-order Euler steps on the same schedule (num_steps denoiser calls).
inline at::Tensor euler_sample(Denoiser& denoiser, const at::Tensor& latents, const at::Tensor& class_labels,
                               SamplerConfig config = {}, at::Generator* generator = nullptr) {
  config.solver = Solver::Euler;
  return edm_sampler(denoiser, latents, class_labels, config, generator);
}

// The deterministic Heun trajectory through given times: x(times[0]) = times[0] * latents, then `substeps`
// Heun steps on a Karras (rho) sub-grid between each pair of consecutive times, all > 0 and decreasing.
// Returns the states at every time, float64 [B, ...] each. With substeps = 1 and times = EDM's t_steps
// (without the final 0) it is edm_sampler's trajectory; PID's student is trained to equal this curve, so the
// two can be shown side by side.
std::vector<at::Tensor> heun_at_times(Denoiser& denoiser, const at::Tensor& latents,
                                      const at::Tensor& class_labels, const std::vector<double>& times,
                                      int substeps = 8, double rho = 7);

// The churn factor gamma_i of step i at noise level t_cur: min(S_churn / num_steps, sqrt(2) - 1) inside
// [S_min, S_max], else 0.
double churn_gamma(const SamplerConfig& config, double t_cur);

// Number of denoiser calls the sampler makes.
int sampler_nfe(const SamplerConfig& config);

}  // namespace pidistill
