// PID's discretisation of [sigma_min, T]: N Karras points indexed from t_0 = T down to t_{N-1} = sigma_min,
// and the neighbour each index is paired with for the finite-difference derivative.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>

namespace pidistill {

struct PidGrid {
  int64_t N = 250;           // Number of grid points (the paper's discretisation number); must be >= 2.
  double sigma_min = 0.002;  // Smallest noise level, t_{N-1}.
  double sigma_max = 80;     // Largest noise level T, t_0.
  double rho = 7;            // Karras schedule exponent.
  // Why: the official code pairs the last index N-1 with N-2 (a backward difference) instead of
  // dropping it. true keeps that pairing; false draws i from {0..N-2} only, so every pair is forward.
  bool last_index_backward = true;
};

// Throws Error when N < 2 or the sigma range is not 0 < sigma_min < sigma_max.
void validate(const PidGrid& grid);

// t_i = (sigma_max^(1/rho) + i/(N-1) (sigma_min^(1/rho) - sigma_max^(1/rho)))^rho for int64 `indices`,
// in `dtype`, in the order PID's idx2sigmas evaluates it (constants rounded to float32 on the float32 path).
at::Tensor idx2sigmas(const at::Tensor& indices, const PidGrid& grid, at::ScalarType dtype);

// j = i + 1, except j = N - 2 where i = N - 1 (only reachable when grid.last_index_backward).
at::Tensor neighbour_indices(const at::Tensor& indices, const PidGrid& grid);

// Per-sample training indices: i ~ uniform{0..N-1} (or {0..N-2} without the backward pairing), int64 [B].
at::Tensor sample_indices(int64_t batch, const PidGrid& grid, at::Generator& generator);

}  // namespace pidistill
