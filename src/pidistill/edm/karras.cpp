#include "pidistill/edm/karras.h"

#include "pidistill/util/error.h"

#include <ATen/ATen.h>

#include <cmath>
#include <string>

namespace pidistill {

at::Tensor karras_sigmas(int num_steps, double sigma_min, double sigma_max, double rho) {
  if (num_steps < 2) fail("", "num_steps must be at least 2 (got " + std::to_string(num_steps) + ")");
  if (!(sigma_min > 0 && sigma_max > sigma_min))
    fail("", "need 0 < sigma_min < sigma_max (got " + std::to_string(sigma_min) + ", " + std::to_string(sigma_max) + ")");
  if (!(rho > 0)) fail("", "rho must be positive (got " + std::to_string(rho) + ")");
  // Same operation order as EDM's edm_sampler so the f64 values match bit for bit.
  auto step_indices = at::arange(num_steps, at::kDouble);  // [N]
  auto t_steps = (std::pow(sigma_max, 1 / rho) +
                  step_indices / (num_steps - 1) * (std::pow(sigma_min, 1 / rho) - std::pow(sigma_max, 1 / rho)))
                     .pow(rho);                              // [N]
  return at::cat({t_steps, at::zeros({1}, at::kDouble)});   // [N + 1]
}

}  // namespace pidistill
