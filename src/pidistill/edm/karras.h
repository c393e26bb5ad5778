// EDM's time-step discretisation (Karras et al. 2022, eq. 5): noise levels spaced evenly in sigma^(1/rho).
#pragma once
#include <ATen/core/Tensor.h>

namespace pidistill {

// t_i = (sigma_max^(1/rho) + i/(num_steps-1) (sigma_min^(1/rho) - sigma_max^(1/rho)))^rho, i = 0..num_steps-1,
// then a final t_N = 0. Returns [num_steps + 1] float64. Error if num_steps < 2 or the sigmas are not ordered.
at::Tensor karras_sigmas(int num_steps, double sigma_min = 0.002, double sigma_max = 80, double rho = 7);

}  // namespace pidistill
