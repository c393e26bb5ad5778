#include "pidistill/pid/pid_grid.h"

#include "pidistill/util/error.h"

#include <ATen/ATen.h>

#include <cmath>
#include <string>

namespace pidistill {

void validate(const PidGrid& grid) {
  if (grid.N < 2)
    fail("--N",
         "the PID grid needs at least 2 points (got " + std::to_string(grid.N) + "); the paper uses 250");
  if (!(grid.sigma_min > 0 && grid.sigma_min < grid.sigma_max))
    fail("PID grid", "need 0 < sigma_min < sigma_max (got " + std::to_string(grid.sigma_min) + ", " +
                         std::to_string(grid.sigma_max) + ")");
}

at::Tensor idx2sigmas(const at::Tensor& indices, const PidGrid& grid, at::ScalarType dtype) {
  validate(grid);
  const double max_inv_rho = std::pow(grid.sigma_max, 1 / grid.rho);
  const double min_inv_rho = std::pow(grid.sigma_min, 1 / grid.rho);
  // Why this order: PID divides the int64 indices by N-1 in the default dtype, then scales and shifts with
  // Python double constants that the float32 kernels round to float32. Doing the same keeps the f32 path
  // bitwise.
  auto frac = indices.to(dtype) / static_cast<double>(grid.N - 1);  // frac: [B]
  return at::pow(frac * (min_inv_rho - max_inv_rho) + max_inv_rho, grid.rho);
}

at::Tensor neighbour_indices(const at::Tensor& indices, const PidGrid& grid) {
  auto j = indices + 1;
  return at::where(j == grid.N, at::full_like(j, grid.N - 2), j);
}

at::Tensor sample_indices(int64_t batch, const PidGrid& grid, at::Generator& generator) {
  validate(grid);
  const int64_t high = grid.last_index_backward ? grid.N : grid.N - 1;
  return at::randint(0, high, {batch}, generator, at::TensorOptions().dtype(at::kLong));
}

}  // namespace pidistill
