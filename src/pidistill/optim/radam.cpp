// RAdam as torch 1.13.1's _single_tensor_radam: the same ATen calls in the same order, so float32 rounds
// (fused multiply-adds included) exactly as the Python optimiser does with the same library.
#include "pidistill/optim/radam.h"

#include "pidistill/util/error.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>

#include <cmath>
#include <string>

namespace pidistill {

RAdam::RAdam(std::vector<at::Tensor> params_in, RAdamConfig config_in)
    : params(std::move(params_in)), config(config_in) {
  if (!(config.lr >= 0)) fail("RAdam", "lr must be >= 0, got " + std::to_string(config.lr));
  if (!(config.beta1 >= 0 && config.beta1 < 1) || !(config.beta2 >= 0 && config.beta2 < 1))
    fail("RAdam", "betas must lie in [0, 1)");
  if (!(config.eps >= 0)) fail("RAdam", "eps must be >= 0");
  // Why eager zeros: torch creates the state at a parameter's first step with zeros and step 0; the update
  // is identical, and a checkpoint then always holds every entry.
  for (const auto& p : params) {
    if (!p.defined()) fail("RAdam", "undefined parameter tensor");
    step_count.push_back(0);
    exp_avg.push_back(at::zeros_like(p, at::MemoryFormat::Preserve).detach());
    exp_avg_sq.push_back(at::zeros_like(p, at::MemoryFormat::Preserve).detach());
  }
}

void RAdam::step() {
  c10::NoGradGuard no_grad;
  const double beta1 = config.beta1, beta2 = config.beta2;
  for (size_t i = 0; i < params.size(); ++i) {
    at::Tensor param = params[i];
    at::Tensor grad = param.grad();
    if (!grad.defined()) continue;
    const double step = static_cast<double>(++step_count[i]);
    // The scalars are Python floats in torch: computed in double, rounded to the tensor dtype where they meet it.
    const double bias_correction1 = 1 - std::pow(beta1, step);
    const double bias_correction2 = 1 - std::pow(beta2, step);
    if (config.weight_decay != 0) grad = grad.add(param, config.weight_decay);

    exp_avg[i].mul_(beta1).add_(grad, 1 - beta1);
    exp_avg_sq[i].mul_(beta2).addcmul_(grad, grad, 1 - beta2);
    at::Tensor bias_corrected_exp_avg = exp_avg[i] / bias_correction1;

    const double rho_inf = 2 / (1 - beta2) - 1;  // maximum length of the approximated SMA
    const double rho_t = rho_inf - 2 * step * std::pow(beta2, step) / bias_correction2;
    if (rho_t > 5.) {
      const double rect =
          std::sqrt((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t));
      at::Tensor exp_avg_sq_sqrt = exp_avg_sq[i].sqrt().add_(config.eps);
      // Why reciprocal: Python's `number / tensor` is evaluated as tensor.reciprocal() * number.
      at::Tensor adaptive_lr = exp_avg_sq_sqrt.reciprocal() * std::sqrt(bias_correction2);
      param.add_(bias_corrected_exp_avg * config.lr * adaptive_lr * rect, -1.0);
    } else {
      // Too few steps for a reliable variance estimate: bias-corrected momentum SGD, no division by sqrt(v).
      param.add_(bias_corrected_exp_avg * config.lr, -1.0);
    }
  }
}

void RAdam::zero_grad() {
  for (auto& p : params) {
    at::Tensor g = p.grad();
    if (g.defined()) {
      g.detach_();
      g.zero_();
    }
  }
}

NamedTensors RAdam::state_tensors() const {
  NamedTensors out;
  for (size_t i = 0; i < params.size(); ++i) {
    const std::string prefix = "radam." + std::to_string(i) + ".";
    out.emplace_back(prefix + "step", at::full({1}, step_count[i], at::kLong));
    out.emplace_back(prefix + "exp_avg", exp_avg[i]);
    out.emplace_back(prefix + "exp_avg_sq", exp_avg_sq[i]);
  }
  return out;
}

void RAdam::load_state(const NamedTensors& state) {
  auto find = [&](const std::string& name) -> const at::Tensor& {
    for (const auto& [k, t] : state)
      if (k == name) return t;
    fail("RAdam state", "no tensor '" + name + "' (checkpoint from another model or optimiser?)");
  };
  c10::NoGradGuard no_grad;
  for (size_t i = 0; i < params.size(); ++i) {
    const std::string prefix = "radam." + std::to_string(i) + ".";
    const at::Tensor& step = find(prefix + "step");
    if (step.numel() != 1) fail("RAdam state", "'" + prefix + "step' must hold one value");
    for (auto [name, dst] : {std::pair{"exp_avg", &exp_avg[i]}, std::pair{"exp_avg_sq", &exp_avg_sq[i]}}) {
      const at::Tensor& src = find(prefix + name);
      if (src.sizes() != params[i].sizes())
        fail("RAdam state", "'" + prefix + name + "' has shape " + c10::str(src.sizes()) +
                                ", parameter " + std::to_string(i) + " has " + c10::str(params[i].sizes()));
      dst->copy_(src);
    }
    step_count[i] = step.to(at::kLong).item<int64_t>();
  }
}

}  // namespace pidistill
