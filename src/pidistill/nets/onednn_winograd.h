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

// conv2d(x, w, stride 1, padding 1) without bias and its two gradients, for contiguous CPU float32 tensors of a
// shape onednn_winograd_supports. dL/dx from dL/dy and w; dL/dw from x and dL/dy.
at::Tensor onednn_winograd_forward(const at::Tensor& x, const at::Tensor& w);
at::Tensor onednn_winograd_input_gradient(const at::Tensor& gy, const at::Tensor& w);
at::Tensor onednn_winograd_weight_gradient(const at::Tensor& x, const at::Tensor& gy);

}  // namespace pidistill
