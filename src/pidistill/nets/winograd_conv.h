// 3x3 convolution (stride 1, padding 1) by Winograd on CPU in float32 (--conv winograd): ours, F(2x2, 3x3), 16
// multiplications per 2x2 output tile instead of 36, on any CPU; or oneDNN's F(4x4, 3x3) (4x fewer) on AVX-512.
#pragma once
#include <ATen/core/Tensor.h>

#include <string>

namespace pidistill {

// Winograd = WinogradF4x4 where this CPU and build have it (onednn_winograd_available), else WinogradF2x2.
enum class ConvAlgorithm { Direct, Winograd, WinogradF2x2, WinogradF4x4 };

// Where a Winograd kernel takes a layer; below these floors each loses to direct convolution (docs/PERFORMANCE.md).
struct WinogradFloors {
  int64_t f2x2_channels = 128;    // F(2x2, 3x3): input and output channels
  int64_t f4x4_size = 16;         // F(4x4, 3x3): image height and width (and 16+ channels)
  int64_t f4x4_work = 1 << 23;    // F(4x4, 3x3): N * C * K * H * W, i.e. ~150 MFLOP of direct convolution
};

// Process-wide choice for the 3x3 convolutions of every network (all threads, all workers). Direct = LibTorch's
// at::conv2d (the default: the golden tests' numbers); the others = winograd_conv3x3 where it applies (floors).
void set_conv_algorithm(ConvAlgorithm algorithm, WinogradFloors floors = {});
ConvAlgorithm conv_algorithm();
// "direct" | "winograd" | "winograd-f2x2" | "winograd-f4x4"; else, or for F(4x4, 3x3) where this CPU or build
// lacks it, a one-line error.
ConvAlgorithm parse_conv_algorithm(const std::string& name);
// The Winograd kernel the chosen algorithm runs: WinogradF2x2 or WinogradF4x4 (Direct for Direct).
ConvAlgorithm winograd_kernel();

// Whether winograd_conv3x3 with winograd_kernel() takes this case: CPU float32 tensors outside autocast,
// x [N, C, H, W] and w [K, C, 3, 3], within set_conv_algorithm's floors (and for F(4x4, 3x3) a shape oneDNN has).
bool winograd_applies(const at::Tensor& x, const at::Tensor& w);

// conv2d(x, w, stride 1, padding 1) without bias, differentiable in x and w (its backward is Winograd too); CPU
// float32 outside autocast only. F(2x2, 3x3): any channel counts, results independent of the thread count.
// F(4x4, 3x3): shapes onednn_winograd_supports; its sums follow oneDNN's threading.
at::Tensor winograd_conv3x3(const at::Tensor& x, const at::Tensor& w,
                            ConvAlgorithm kernel = ConvAlgorithm::WinogradF2x2);

// conv2d(x, w, bias, stride 1, padding 1) by the chosen algorithm: winograd_conv3x3 (+ bias) where
// conv_algorithm() is Winograd and winograd_applies, else at::conv2d. bias may be undefined.
at::Tensor conv3x3_same(const at::Tensor& x, const at::Tensor& w, const at::Tensor& bias = {});

}  // namespace pidistill
