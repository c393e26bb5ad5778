// Adam as torch 1.13's single-tensor torch.optim.Adam computes it, with its state in parameter order so that a
// checkpoint can hold it and a resumed run continues bit for bit (torch::optim keys state by pointer).
#pragma once
#include "pidistill/io/safetensors.h"

#include <ATen/core/Tensor.h>

#include <vector>

namespace pidistill {

struct AdamConfig {
  double lr = 1e-3;       // Learning rate (EDM's training loop sets it every step for the ramp-up).
  double beta1 = 0.9;     // Decay of the first-moment average.
  double beta2 = 0.999;   // Decay of the second-moment average.
  double eps = 1e-8;      // Added to sqrt(v_hat) for stability.
  double weight_decay = 0;  // L2 penalty added to the gradient (EDM uses 0).
};

class Adam {
 public:
  Adam(std::vector<at::Tensor> params, AdamConfig config);
  AdamConfig config;

  // One update of every parameter that has a gradient; parameters without one are skipped as torch does.
  void step();
  void zero_grad();  // sets defined gradients to 0

  // State for checkpoints: "step.I", "exp_avg.I", "exp_avg_sq.I" per parameter index I (only those stepped).
  NamedTensors state() const;
  // Restores state(); Error naming `where` and the key if counts or shapes do not fit.
  void load_state(const NamedTensors& state, const std::string& where);

 private:
  std::vector<at::Tensor> params_;
  std::vector<int64_t> step_;  // per parameter, 0 = no state yet
  std::vector<at::Tensor> exp_avg_, exp_avg_sq_;
};

}  // namespace pidistill
