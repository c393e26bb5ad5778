// 3x3 convolution (stride 1, padding 1) by Winograd's F(2x2, 3x3) on CPU in float32: 16 multiplications per 2x2
// output tile instead of 36, so the matrix products do 2.25x fewer flops than direct convolution (--conv winograd).
#pragma once
#include <ATen/core/Tensor.h>

#include <string>

namespace pidistill {

enum class ConvAlgorithm { Direct, Winograd };

// Process-wide choice for the 3x3 convolutions of every network (all threads, all workers). Direct = LibTorch's
// at::conv2d (the default: the golden tests' numbers); Winograd = winograd_conv3x3 where it applies, that is for
// layers with at least min_channels input and output channels.
void set_conv_algorithm(ConvAlgorithm algorithm, int64_t min_channels = 128);
ConvAlgorithm conv_algorithm();
ConvAlgorithm parse_conv_algorithm(const std::string& name);  // "direct" | "winograd"; else a one-line error

// Whether winograd_conv3x3 takes this case: CPU float32 tensors outside autocast, x [N, C, H, W] and w [K, C, 3, 3]
// with C and K of at least set_conv_algorithm's min_channels (default 128: below it the transforms cost more
// than the products save).
bool winograd_applies(const at::Tensor& x, const at::Tensor& w);

// conv2d(x, w, stride 1, padding 1) without bias, differentiable in x and w (its backward is Winograd too), for
// any channel counts; CPU float32 outside autocast only. Results do not depend on the number of threads.
at::Tensor winograd_conv3x3(const at::Tensor& x, const at::Tensor& w);

// conv2d(x, w, bias, stride 1, padding 1) by the chosen algorithm: winograd_conv3x3 (+ bias) where
// conv_algorithm() is Winograd and winograd_applies, else at::conv2d. bias may be undefined.
at::Tensor conv3x3_same(const at::Tensor& x, const at::Tensor& w, const at::Tensor& bias = {});

}  // namespace pidistill
