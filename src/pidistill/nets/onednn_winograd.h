// oneDNN's Winograd F(4x4, 3x3) convolution (stride 1, padding 1, float32) on CPUs with AVX-512: 2.25
// multiplications per output instead of 9, forward and both gradients (--conv winograd-f4x4).
#pragma once
#include <ATen/core/Tensor.h>

namespace pidistill {

// Whether this build links oneDNN (libdnnl-dev) and oneDNN has a Winograd kernel for this CPU (AVX-512).
bool onednn_winograd_available();

// Whether oneDNN makes a Winograd convolution for x of sizes [N, C, H, W] and K output channels (it wants channel
// counts that are multiples of its vector width, among others). The answer is kept per shape.
bool onednn_winograd_supports(int64_t N, int64_t C, int64_t K, int64_t H, int64_t W);

// conv2d(x, w, stride 1, padding 1) without bias, for CPU float32 tensors of a shape onednn_winograd_supports.
at::Tensor onednn_winograd_forward(const at::Tensor& x, const at::Tensor& w);

// Its gradients from dL/dy: dL/dx where input_gradient, dL/dw where weight_gradient (else undefined). One call, so
// dL/dy is brought into oneDNN's layout once for both.
struct OneDnnGradients {
  at::Tensor x, w;
};
OneDnnGradients onednn_winograd_backward(const at::Tensor& x, const at::Tensor& w, const at::Tensor& gy,
                                         bool input_gradient, bool weight_gradient);

}  // namespace pidistill
