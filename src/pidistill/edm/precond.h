// EDM's preconditioners: D(x, sigma) = c_skip x + c_out F(c_in x, c_noise, labels) for EDM, VP and VE.
#pragma once
#include "pidistill/edm/denoiser.h"
#include "pidistill/nets/net_file.h"
#include "pidistill/nets/unet.h"

#include <map>
#include <memory>
#include <string>

namespace pidistill {

enum class PrecondType { EDM, VP, VE };
PrecondType precond_from_string(const std::string& name);  // "edm" | "vp" | "ve"; throws Error otherwise
std::string to_string(PrecondType type);

struct PrecondOutput {
  at::Tensor model_in, noise_labels, F, D;  // what went into the network, its output, and the denoised image
};

struct Precond : Denoiser {
  std::shared_ptr<UNet> net;
  PrecondType type = PrecondType::EDM;
  double sigma_data = 0.5;               // EDM: expected standard deviation of the training data.
  double beta_d = 19.9, beta_min = 0.1;  // VP: extent and initial value of the noise level schedule.
  double M = 1000;                       // VP: original number of timesteps in the DDPM formulation.
  double epsilon_t = 1e-5;               // VP: minimum t-value used during training.
  double ve_sigma_min = 0.02, ve_sigma_max = 100;  // VE: noise level range.

  Precond(std::shared_ptr<UNet> net, PrecondType type);

  // Computes in the network's parameter dtype (EDM's float32 casts become casts to that dtype).
  PrecondOutput forward(const at::Tensor& x, const at::Tensor& sigma, const at::Tensor& class_labels = {},
                        const at::Tensor& augment_labels = {});
  at::Tensor denoise(const at::Tensor& x, const at::Tensor& sigma,
                     const at::Tensor& class_labels = {}) override;
  at::Tensor round_sigma(const at::Tensor& sigma) const;  // identity for EDM, VP and VE (only iDDPM rounds)
  int label_dim() const override;
  double sigma_min() const override;
  double sigma_max() const override;
};

// Sets the constants a weight file records in metadata "precond_constants" (JSON, EDM's names: sigma_data,
// beta_d, beta_min, M, epsilon_t; for VE sigma_min, sigma_max), e.g. from an EDM pickle. Absent: unchanged.
void set_precond_constants(Precond& precond, const std::map<std::string, std::string>& metadata);

// The preconditioner a loaded weight file describes: its "precond" type with the constants it records. Every
// command that wraps a teacher file in D(x, sigma) goes through this, so an EDM pickle's constants always
// apply.
std::shared_ptr<Precond> precond_for(const LoadedNet& loaded);

}  // namespace pidistill
