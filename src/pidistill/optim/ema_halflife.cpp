#include "pidistill/optim/ema_halflife.h"

#include "pidistill/util/error.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>

namespace pidistill {

double ema_beta(int64_t batch_size, int64_t cur_nimg, double ema_halflife_kimg, double ema_rampup_ratio) {
  double ema_halflife_nimg = ema_halflife_kimg * 1000;
  if (ema_rampup_ratio > 0)
    ema_halflife_nimg = std::min(ema_halflife_nimg, static_cast<double>(cur_nimg) * ema_rampup_ratio);
  return std::pow(0.5, static_cast<double>(batch_size) / std::max(ema_halflife_nimg, 1e-8));
}

void update_ema(torch::nn::Module& ema, const torch::nn::Module& net, double beta) {
  auto ema_params = ema.parameters();
  auto net_params = net.parameters();
  if (ema_params.size() != net_params.size())
    fail("update_ema", "EMA has " + std::to_string(ema_params.size()) + " parameters, network " +
                           std::to_string(net_params.size()));
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < ema_params.size(); ++i)
    ema_params[i].copy_(net_params[i].detach().lerp(ema_params[i], beta));
}

}  // namespace pidistill
