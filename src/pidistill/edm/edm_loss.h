// EDM's training losses (Karras et al. 2022, training/loss.py): EDMLoss, VPLoss and VELoss as one function of
// the per-sample noise draw, so that a test can pass the draws of the reference run.
#pragma once
#include "pidistill/edm/denoiser.h"
#include "pidistill/edm/precond.h"

#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>

namespace pidistill {

struct LossConfig {
  PrecondType type = PrecondType::EDM;  // Which of EDM's losses: EDMLoss, VPLoss or VELoss.
  double P_mean = -1.2;                 // EDM: mean of the log-sigma training distribution.
  double P_std = 1.2;                   // EDM: standard deviation of the log-sigma training distribution.
  double sigma_data = 0.5;              // EDM: expected standard deviation of the training data.
  double beta_d = 19.9;                 // VP: extent of the noise level schedule.
  double beta_min = 0.1;                // VP: initial slope of the noise level schedule.
  double epsilon_t = 1e-5;              // VP: minimum t-value used during training.
  double sigma_min = 0.02;              // VE: minimum noise level.
  double sigma_max = 100;               // VE: maximum noise level.
};

// The random draws of one loss evaluation, in the images' dtype.
struct LossDraws {
  at::Tensor rnd;     // [B, 1, 1, 1]: rnd_normal (EDM) or rnd_uniform (VP, VE)
  at::Tensor n_unit;  // [B, C, H, W] standard normal; the noise is n = n_unit * sigma
};

// Draws rnd and n_unit from `gen` (rnd first, then n_unit).
LossDraws draw_loss_noise(const LossConfig& config, const at::Tensor& images, at::Generator& gen);

// sigma: [B, 1, 1, 1] from rnd: EDM exp(rnd P_std + P_mean); VP sigma(1 + rnd (epsilon_t - 1)); VE
// sigma_min (sigma_max / sigma_min)^rnd.
at::Tensor loss_sigma(const LossConfig& config, const at::Tensor& rnd);
// weight: EDM (sigma^2 + sigma_data^2) / (sigma sigma_data)^2; VP and VE 1 / sigma^2.
at::Tensor loss_weight(const LossConfig& config, const at::Tensor& sigma);

// Per-element loss weight * (D(y + n, sigma) - y)^2: [B, C, H, W]. y = images [B, C, H, W] in [-1, 1];
// class_labels [B, label_dim] or undefined. Gradients flow into the denoiser's network.
at::Tensor diffusion_loss(Denoiser& net, const LossConfig& config, const at::Tensor& images,
                          const at::Tensor& class_labels, const LossDraws& draws);

// Same, drawing the noise from `gen`.
at::Tensor diffusion_loss(Denoiser& net, const LossConfig& config, const at::Tensor& images,
                          const at::Tensor& class_labels, at::Generator& gen);

}  // namespace pidistill
