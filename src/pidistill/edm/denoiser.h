// A teacher is anything that gives the denoised image D(x, sigma): an EDM network under a preconditioner,
// or a closed-form denoiser (e.g. a Gaussian mixture). Samplers, the EDM loss and PID only see this.
#pragma once
#include <ATen/core/Tensor.h>

namespace pidistill {

struct Denoiser {
  virtual ~Denoiser() = default;
  // x: [B, C, H, W] (or [B, D] for non-image data); sigma: [B], [B,1,1,1] or a 0-dim tensor;
  // class_labels: [B, label_dim] one-hot or undefined. Returns D in x's dtype.
  virtual at::Tensor denoise(const at::Tensor& x, const at::Tensor& sigma,
                             const at::Tensor& class_labels = {}) = 0;
  virtual int label_dim() const { return 0; }
  virtual double sigma_min() const { return 0; }
  virtual double sigma_max() const { return INFINITY; }
};

}  // namespace pidistill
