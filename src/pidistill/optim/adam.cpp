#include "pidistill/optim/adam.h"

#include "pidistill/util/error.h"

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>  // at::NoGradGuard; ATen.h does not bring it in LibTorch 2.x

#include <cmath>
#include <map>

namespace pidistill {

Adam::Adam(std::vector<at::Tensor> params, AdamConfig config_)
    : config(config_), params_(std::move(params)), step_(params_.size(), 0), exp_avg_(params_.size()),
      exp_avg_sq_(params_.size()) {}

void Adam::zero_grad() {
  for (auto& p : params_)
    if (p.grad().defined()) p.mutable_grad().zero_();
}

void Adam::step() {
  at::NoGradGuard no_grad;
  for (size_t i = 0; i < params_.size(); ++i) {
    auto& param = params_[i];
    if (!param.grad().defined()) continue;
    at::Tensor grad = param.grad();
    if (step_[i] == 0) {
      exp_avg_[i] = at::zeros_like(param, at::MemoryFormat::Preserve);
      exp_avg_sq_[i] = at::zeros_like(param, at::MemoryFormat::Preserve);
    }
    step_[i] += 1;
    if (config.weight_decay != 0) grad = grad.add(param, config.weight_decay);
    // Same operations in the same order as torch 1.13's _single_tensor_adam.
    exp_avg_[i].mul_(config.beta1).add_(grad, 1 - config.beta1);
    exp_avg_sq_[i].mul_(config.beta2).addcmul_(grad, grad, 1 - config.beta2);
    double step = static_cast<double>(step_[i]);
    double bias_correction1 = 1 - std::pow(config.beta1, step);
    double bias_correction2 = 1 - std::pow(config.beta2, step);
    double step_size = config.lr / bias_correction1;
    double bias_correction2_sqrt = std::sqrt(bias_correction2);
    auto denom = (exp_avg_sq_[i].sqrt() / bias_correction2_sqrt).add_(config.eps);
    param.addcdiv_(exp_avg_[i], denom, -step_size);
  }
}

NamedTensors Adam::state() const {
  NamedTensors out;
  for (size_t i = 0; i < params_.size(); ++i) {
    if (step_[i] == 0) continue;
    auto id = std::to_string(i);
    out.emplace_back("step." + id, at::scalar_tensor(step_[i], at::kLong));
    out.emplace_back("exp_avg." + id, exp_avg_[i]);
    out.emplace_back("exp_avg_sq." + id, exp_avg_sq_[i]);
  }
  return out;
}

void Adam::load_state(const NamedTensors& state, const std::string& where) {
  std::map<std::string, at::Tensor> by_name(state.begin(), state.end());
  auto take = [&](const std::string& key, const at::Tensor& like) {
    auto it = by_name.find(key);
    if (it == by_name.end()) fail(where, "optimizer state '" + key + "' missing");
    if (like.defined() && it->second.sizes() != like.sizes())
      fail(where, "optimizer state '" + key + "' has the wrong shape; hint: the checkpoint is of another network");
    auto t = it->second;
    by_name.erase(it);
    return t;
  };
  std::vector<int64_t> step(params_.size(), 0);
  std::vector<at::Tensor> m(params_.size()), v(params_.size());
  for (size_t i = 0; i < params_.size(); ++i) {
    auto id = std::to_string(i);
    if (!by_name.count("step." + id)) continue;
    step[i] = take("step." + id, {}).item<int64_t>();
    m[i] = take("exp_avg." + id, params_[i]).to(params_[i].options()).clone();
    v[i] = take("exp_avg_sq." + id, params_[i]).to(params_[i].options()).clone();
  }
  if (!by_name.empty())
    fail(where, "unexpected optimizer state '" + by_name.begin()->first +
                    "'; hint: the checkpoint is of a network with more parameters");
  step_ = step;
  exp_avg_ = m;
  exp_avg_sq_ = v;
}

}  // namespace pidistill
