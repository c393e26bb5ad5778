// The PID student x_theta(z, t) = (t/T)(T z) + (1 - t/T) F_theta(c_in T z, ln(t)/4 [, class]): a whole
// trajectory of the teacher's probability-flow ODE in one network, exactly T z at t = T by construction.
#pragma once
#include "pidistill/nets/unet.h"

#include <ATen/core/Tensor.h>

#include <memory>

namespace pidistill {

struct StudentConstants {
  double T = 80;             // sigma_max: where the trajectory starts, x(T) = T z.
  double sigma_min = 0.002;  // Smallest t the student is queried at; one-call generation evaluates here.
  double sigma_data = 0.5;   // Only enters through c_in.
  // Fixed input scaling 1/sqrt(sigma_data^2 + T^2), the same for every t (EDM's c_skip/c_out are not used).
  double c_in() const;
};

struct StudentOutput {
  at::Tensor noise, model_in, c_noise, F,
      x_theta;  // T z, c_in T z, ln(t)/4, the network's output, the result
};

class Student {
 public:
  // F: any network with UNet's forward signature (an EDM U-Net copied from the teacher, or an MLP).
  Student(std::shared_ptr<UNet> F, StudentConstants constants = {});

  // z: [B, ...] standard normal latents; t: [B] (or 0-dim) in [sigma_min, T], else Error.
  // class_labels: [B, label_dim] or undefined. Computes in F's parameter dtype (z and t are cast to it).
  StudentOutput evaluate(const at::Tensor& z, const at::Tensor& t, const at::Tensor& class_labels = {}) const;
  at::Tensor operator()(const at::Tensor& z, const at::Tensor& t, const at::Tensor& class_labels = {}) const {
    return evaluate(z, t, class_labels).x_theta;
  }

  std::shared_ptr<UNet> F;
  StudentConstants constants;
};

// A deep copy of `net` (parameters and buffers, same dtype and mode), so the student trains independently of
// the teacher. Works for make_unet networks and Mlp.
std::shared_ptr<UNet> clone_net(const UNet& net);
// Copies every parameter and buffer of `src` into `dst` (same architecture), e.g. an EMA into a network.
void copy_weights(UNet& dst, const UNet& src);

}  // namespace pidistill
