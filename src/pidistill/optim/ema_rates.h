// PID's exponential moving averages of the student's parameters (cm/nn.py update_ema), one copy per rate.
#pragma once
#include "pidistill/io/safetensors.h"

#include <ATen/core/Tensor.h>

#include <vector>

namespace pidistill {

struct Ema {
  std::vector<double> rates;                       // e.g. 0.999, 0.9999, 0.99995 (the paper's three)
  std::vector<std::vector<at::Tensor>> averages;   // averages[r][i]: the copy of params[i] at rates[r]

  // Every copy starts as a clone (detached) of the parameters, as PID deep-copies them before the first step.
  Ema(const std::vector<at::Tensor>& params, std::vector<double> rates);

  // e = rate * e + (1 - rate) * theta, with the two coefficients rounded to the parameter dtype separately
  // (e * rate rounded, then (1 - rate) * theta added), as torch's mul_ then add_(alpha) does.
  void update(const std::vector<at::Tensor>& params);

  // Checkpoint state: `ema.<r>.<i>` for each rate index r and parameter index i.
  NamedTensors state_tensors() const;
  // Throws Error naming the key on a missing tensor or a shape mismatch.
  void load_state(const NamedTensors& state);
};

}  // namespace pidistill
