#include "pidistill/edm/edm_loss.h"

#include <ATen/ATen.h>

namespace pidistill {

namespace {
// VP's noise level at time t: sqrt(exp(beta_d t^2 / 2 + beta_min t) - 1).
at::Tensor vp_sigma(const LossConfig& c, const at::Tensor& t) {
  return ((0.5 * c.beta_d * (t * t) + c.beta_min * t).exp() - 1).sqrt();
}
}  // namespace

LossDraws draw_loss_noise(const LossConfig& config, const at::Tensor& images, at::Generator& gen) {
  auto options = images.options();
  std::vector<int64_t> per_sample = {images.size(0)};
  for (int64_t d = 1; d < images.dim(); ++d) per_sample.push_back(1);
  LossDraws draws;
  draws.rnd = config.type == PrecondType::EDM ? at::randn(per_sample, gen, options)   // [B, 1, 1, 1]
                                              : at::rand(per_sample, gen, options);   // [B, 1, 1, 1]
  draws.n_unit = at::randn(images.sizes(), gen, options);                             // [B, C, H, W]
  return draws;
}

at::Tensor loss_sigma(const LossConfig& c, const at::Tensor& rnd) {
  switch (c.type) {
    case PrecondType::EDM: return (rnd * c.P_std + c.P_mean).exp();
    case PrecondType::VP: return vp_sigma(c, 1 + rnd * (c.epsilon_t - 1));
    case PrecondType::VE: return c.sigma_min * at::pow(c.sigma_max / c.sigma_min, rnd);
  }
  return {};
}

at::Tensor loss_weight(const LossConfig& c, const at::Tensor& sigma) {
  if (c.type == PrecondType::EDM)
    return (sigma * sigma + c.sigma_data * c.sigma_data) / (sigma * c.sigma_data).pow(2);
  return 1 / (sigma * sigma);
}

at::Tensor diffusion_loss(Denoiser& net, const LossConfig& config, const at::Tensor& images,
                          const at::Tensor& class_labels, const LossDraws& draws) {
  auto sigma = loss_sigma(config, draws.rnd);            // [B, 1, 1, 1]
  auto weight = loss_weight(config, sigma);              // [B, 1, 1, 1]
  const auto& y = images;                                // [B, C, H, W]; no augment pipe
  auto n = draws.n_unit * sigma;                         // [B, C, H, W]
  auto D_yn = net.denoise(y + n, sigma, class_labels);   // [B, C, H, W]
  return weight * (D_yn - y).pow(2);                     // [B, C, H, W]
}

at::Tensor diffusion_loss(Denoiser& net, const LossConfig& config, const at::Tensor& images,
                          const at::Tensor& class_labels, at::Generator& gen) {
  return diffusion_loss(net, config, images, class_labels, draw_loss_noise(config, images, gen));
}

}  // namespace pidistill
