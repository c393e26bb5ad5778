#include "pidistill/edm/precond.h"

#include "pidistill/util/error.h"

#include <ATen/ATen.h>

#include <nlohmann/json.hpp>

#include <cmath>

namespace pidistill {

PrecondType precond_from_string(const std::string& name) {
  if (name == "edm") return PrecondType::EDM;
  if (name == "vp") return PrecondType::VP;
  if (name == "ve") return PrecondType::VE;
  fail("precond", "unknown preconditioner '" + name + "' (expected edm, vp or ve)");
}

std::string to_string(PrecondType type) {
  switch (type) {
    case PrecondType::EDM:
      return "edm";
    case PrecondType::VP:
      return "vp";
    case PrecondType::VE:
      return "ve";
  }
  return "edm";
}

Precond::Precond(std::shared_ptr<UNet> net_, PrecondType type_) : net(std::move(net_)), type(type_) {
  if (!net) fail("precond", "no network given");
}

namespace {
// Python's `scalar / tensor` is tensor.reciprocal() * scalar; kept for float32 bit-closeness.
at::Tensor rdiv(double s, const at::Tensor& t) { return t.reciprocal() * s; }

at::ScalarType net_dtype(const UNet& net) {
  auto params = net.parameters();
  return params.empty() ? at::kFloat : params.front().scalar_type();
}
}  // namespace

PrecondOutput Precond::forward(const at::Tensor& x_in, const at::Tensor& sigma_in,
                               const at::Tensor& class_labels_in, const at::Tensor& augment_labels) {
  // Why: EDM casts to float32 here; we cast to the network's dtype so a float64 network runs purely in
  // float64.
  const auto dtype = net_dtype(*net);
  auto x = x_in.to(dtype);                                             // x: [B, C, H, W]
  auto sigma = sigma_in.to(x.device(), dtype).reshape({-1, 1, 1, 1});  // sigma: [B or 1, 1, 1, 1]
  const int64_t L = net->config.label_dim;
  at::Tensor class_labels;
  if (L) {
    class_labels = class_labels_in.defined() ? class_labels_in.to(dtype).reshape({-1, L})  // [B, L]
                                             : at::zeros({1, L}, x.options());  // broadcast over the batch
  }
  at::Tensor c_skip, c_out, c_in, c_noise;
  if (type == PrecondType::EDM) {
    const double sd = sigma_data;
    c_skip = rdiv(sd * sd, sigma.pow(2) + sd * sd);
    c_out = sigma * sd / (sigma.pow(2) + sd * sd).sqrt();
    c_in = rdiv(1, (sigma.pow(2) + sd * sd).sqrt());
    c_noise = sigma.log() / 4;
  } else if (type == PrecondType::VP) {
    c_out = -sigma;
    c_in = rdiv(1, (sigma.pow(2) + 1).sqrt());
    // sigma_inv(sigma) = (sqrt(beta_min^2 + 2 beta_d ln(1 + sigma^2)) - beta_min) / beta_d
    auto sigma_inv =
        (((sigma.pow(2) + 1).log() * (2 * beta_d) + beta_min * beta_min).sqrt() - beta_min) / beta_d;
    c_noise = sigma_inv * (M - 1);
  } else {
    c_out = sigma;
    c_noise = (sigma * 0.5).log();
  }
  PrecondOutput out;
  out.model_in = c_in.defined() ? c_in * x : x;  // VE: c_in = 1
  out.noise_labels = c_noise.flatten();          // [B or 1]
  out.F = net->forward(out.model_in, out.noise_labels, class_labels, augment_labels).to(dtype);
  auto skip_part = c_skip.defined() ? c_skip * x : x;  // VP, VE: c_skip = 1
  out.D = skip_part + c_out * out.F;
  return out;
}

at::Tensor Precond::denoise(const at::Tensor& x, const at::Tensor& sigma, const at::Tensor& class_labels) {
  return forward(x, sigma, class_labels).D.to(x.scalar_type());
}

// EDM's VPPrecond, VEPrecond and EDMPrecond all return sigma unchanged (only iDDPM rounds to a grid).
at::Tensor Precond::round_sigma(const at::Tensor& sigma) const { return sigma; }

int Precond::label_dim() const { return net->config.label_dim; }

double Precond::sigma_min() const {
  if (type == PrecondType::VP)  // sigma(epsilon_t) = sqrt(exp(beta_d t^2 / 2 + beta_min t) - 1)
    return std::sqrt(std::exp(0.5 * beta_d * epsilon_t * epsilon_t + beta_min * epsilon_t) - 1);
  if (type == PrecondType::VE) return ve_sigma_min;
  return 0;
}

double Precond::sigma_max() const {
  if (type == PrecondType::VP) return std::sqrt(std::exp(0.5 * beta_d + beta_min) - 1);  // sigma(t = 1)
  if (type == PrecondType::VE) return ve_sigma_max;
  return INFINITY;
}

void set_precond_constants(Precond& p, const std::map<std::string, std::string>& metadata) {
  auto it = metadata.find("precond_constants");
  if (it == metadata.end()) return;
  const nlohmann::json j = nlohmann::json::parse(it->second, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) fail("precond_constants", "not a JSON object: " + it->second);
  auto set = [&](const char* key, double& field) {
    if (!j.contains(key)) return;
    if (!j[key].is_number()) fail("precond_constants", std::string("'") + key + "' is not a number");
    field = j[key].get<double>();
  };
  set("sigma_data", p.sigma_data);
  set("beta_d", p.beta_d);
  set("beta_min", p.beta_min);
  set("M", p.M);
  set("epsilon_t", p.epsilon_t);
  if (p.type == PrecondType::VE) {
    set("sigma_min", p.ve_sigma_min);
    set("sigma_max", p.ve_sigma_max);
  }
}

std::shared_ptr<Precond> precond_for(const LoadedNet& loaded) {
  auto precond = std::make_shared<Precond>(loaded.net, precond_from_string(loaded.precond));
  set_precond_constants(*precond, loaded.metadata);
  return precond;
}

}  // namespace pidistill
