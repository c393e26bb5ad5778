// EDM's exponential moving average of the weights, parameterised by a half-life in images (training/training_loop.py).
#pragma once
#include <torch/nn/module.h>

#include <cstdint>

namespace pidistill {

// beta = 0.5^(batch_size / max(ema_halflife_nimg, 1e-8)), with ema_halflife_nimg = ema_halflife_kimg * 1000,
// ramped up as min(ema_halflife_nimg, cur_nimg * ema_rampup_ratio) when ema_rampup_ratio > 0.
double ema_beta(int64_t batch_size, int64_t cur_nimg, double ema_halflife_kimg, double ema_rampup_ratio);

// ema = lerp(net, ema, beta) for every parameter (buffers are constants in EDM's networks and are not averaged).
// Both modules must have the same parameters in the same order.
void update_ema(torch::nn::Module& ema, const torch::nn::Module& net, double beta);

}  // namespace pidistill
