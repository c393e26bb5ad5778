// RAdam (Liu et al. 2020) exactly as torch 1.13.1 computes it (single-tensor path), the optimiser PID trains with.
#pragma once
#include "pidistill/io/safetensors.h"

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

namespace pidistill {

struct RAdamConfig {
  double lr = 2e-4;            // Learning rate (PID CIFAR-10: 2e-4 constant; ImageNet 64: 1e-4).
  double beta1 = 0.9;          // Decay of the first-moment average.
  double beta2 = 0.999;        // Decay of the second-moment average.
  double eps = 1e-8;           // Added to sqrt(v), not to v, as torch's code does.
  double weight_decay = 0;     // L2 decay added to the gradient (not AdamW's decoupled decay).
};

struct RAdam {
  std::vector<at::Tensor> params;  // updated in place (under no-grad)
  RAdamConfig config;
  // Per parameter, as torch keeps them: steps taken, m and v (same shape and dtype as the parameter).
  std::vector<int64_t> step_count;
  std::vector<at::Tensor> exp_avg, exp_avg_sq;

  RAdam(std::vector<at::Tensor> params, RAdamConfig config = {});

  // One update from each parameter's .grad(); parameters whose grad is undefined are skipped (their step
  // count does not advance, as in torch).
  void step();
  // Sets every defined grad to zero.
  void zero_grad();

  // Checkpoint state: `radam.<i>.step` (int64 [1]), `radam.<i>.exp_avg`, `radam.<i>.exp_avg_sq`.
  NamedTensors state_tensors() const;
  // Restores what state_tensors() wrote; throws Error naming the key on a missing tensor or a shape mismatch.
  void load_state(const NamedTensors& state);
};

}  // namespace pidistill
