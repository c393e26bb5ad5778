// PID's update_ema: targ.mul_(rate).add_(src, alpha=1-rate), one average per rate.
#include "pidistill/optim/ema_rates.h"

#include "pidistill/util/error.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>

#include <string>

namespace pidistill {

Ema::Ema(const std::vector<at::Tensor>& params, std::vector<double> rates_in) : rates(std::move(rates_in)) {
  for (double rate : rates)
    if (!(rate >= 0 && rate <= 1)) fail("EMA", "rate must lie in [0, 1], got " + std::to_string(rate));
  for (size_t r = 0; r < rates.size(); ++r) {
    std::vector<at::Tensor> copy;
    for (const auto& p : params) copy.push_back(p.detach().clone());
    averages.push_back(std::move(copy));
  }
}

void Ema::update(const std::vector<at::Tensor>& params) {
  c10::NoGradGuard no_grad;
  for (size_t r = 0; r < rates.size(); ++r) {
    if (params.size() != averages[r].size())
      fail("EMA", "update with " + std::to_string(params.size()) + " parameters, averages hold " +
                      std::to_string(averages[r].size()));
    // Why not lerp: 1 - rate is formed in double and rounded on its own, as PID's code does.
    for (size_t i = 0; i < params.size(); ++i) averages[r][i].mul_(rates[r]).add_(params[i].detach(), 1 - rates[r]);
  }
}

NamedTensors Ema::state_tensors() const {
  NamedTensors out;
  for (size_t r = 0; r < averages.size(); ++r)
    for (size_t i = 0; i < averages[r].size(); ++i)
      out.emplace_back("ema." + std::to_string(r) + "." + std::to_string(i), averages[r][i]);
  return out;
}

void Ema::load_state(const NamedTensors& state) {
  c10::NoGradGuard no_grad;
  for (size_t r = 0; r < averages.size(); ++r)
    for (size_t i = 0; i < averages[r].size(); ++i) {
      const std::string name = "ema." + std::to_string(r) + "." + std::to_string(i);
      const at::Tensor* src = nullptr;
      for (const auto& [k, t] : state)
        if (k == name) src = &t;
      if (!src) fail("EMA state", "no tensor '" + name + "' (checkpoint with other EMA rates or model?)");
      if (src->sizes() != averages[r][i].sizes())
        fail("EMA state", "'" + name + "' has shape " + c10::str(src->sizes()) + ", expected " +
                              c10::str(averages[r][i].sizes()));
      averages[r][i].copy_(*src);
    }
}

}  // namespace pidistill
