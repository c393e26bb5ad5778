// Winograd convolution (--conv winograd): ours, F(2x2, 3x3), as accurate as LibTorch's direct float32 convolution
// against a float64 reference, in the output and both gradients, and independent of the thread count; oneDNN's
// F(4x4, 3x3) (AVX-512 CPUs) within a few float32 roundings more; with either in every 3x3 layer the golden
// networks still match the official float32 outputs.
#include "pidistill/nets/net_file.h"
#include "pidistill/nets/onednn_winograd.h"
#include "pidistill/nets/winograd_conv.h"
#include "pidistill/util/error.h"
#include "test_common.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/autocast_mode.h>

#include <iostream>
#include <vector>

using namespace pidistill;
using pidistill::test::expect_error;
using pidistill::test::golden;
using pidistill::test::load_golden;

namespace {

struct Conv {
  at::Tensor y, dx, dw;
};

// y = conv(x, w) and the gradients of sum(y * gy), by winograd_conv3x3 with `kernel` or (Direct) at::conv2d in
// x's dtype.
Conv run(const at::Tensor& x0, const at::Tensor& w0, const at::Tensor& gy, ConvAlgorithm kernel) {
  auto x = x0.detach().requires_grad_(), w = w0.detach().requires_grad_();
  auto y = kernel == ConvAlgorithm::Direct ? at::conv2d(x, w, {}, 1, 1) : winograd_conv3x3(x, w, kernel);
  y.backward(gy.to(y.scalar_type()));
  return {y.detach(), x.grad(), w.grad()};
}

double relative_error(const at::Tensor& a, const at::Tensor& reference) {
  return ((a.to(at::kDouble) - reference).abs().max() / reference.abs().max()).item<double>();
}

struct Shape {
  int64_t N, C, K, H, W;
};
// Even and odd sizes (tiles past the edge), non-square images, one image, 1x1 images, channel counts that are no
// multiple of anything.
const Shape kShapes[] = {{2, 16, 24, 8, 8}, {3, 20, 12, 9, 7}, {1, 8, 8, 5, 12}, {4, 5, 3, 1, 1}, {2, 32, 16, 17, 16}};

constexpr auto kDirect = ConvAlgorithm::Direct;
constexpr auto kF2 = ConvAlgorithm::WinogradF2x2;
constexpr auto kF4 = ConvAlgorithm::WinogradF4x4;

#define SKIP_WITHOUT_ONEDNN_WINOGRAD()                                                                        \
  if (!onednn_winograd_available())                                                                           \
  GTEST_SKIP() << "oneDNN's Winograd F(4x4, 3x3) needs an AVX-512 CPU and a build with libdnnl-dev"

}  // namespace

TEST(WinogradConv, AsAccurateAsDirectConvolution) {
  auto gen = at::detail::createCPUGenerator(7);
  for (const auto& s : kShapes) {
    SCOPED_TRACE(std::to_string(s.N) + "x" + std::to_string(s.C) + "->" + std::to_string(s.K) + " " +
                 std::to_string(s.H) + "x" + std::to_string(s.W));
    auto x = at::randn({s.N, s.C, s.H, s.W}, gen);
    auto w = at::randn({s.K, s.C, 3, 3}, gen) / std::sqrt(9.0 * s.C);
    auto gy = at::randn({s.N, s.K, s.H, s.W}, gen);
    const Conv ref = run(x.to(at::kDouble), w.to(at::kDouble), gy, kDirect);
    const Conv direct = run(x, w, gy, kDirect), wino = run(x, w, gy, kF2);
    const double e_direct[] = {relative_error(direct.y, ref.y), relative_error(direct.dx, ref.dx),
                               relative_error(direct.dw, ref.dw)};
    const double e_wino[] = {relative_error(wino.y, ref.y), relative_error(wino.dx, ref.dx),
                             relative_error(wino.dw, ref.dw)};
    for (int i = 0; i < 3; ++i) {
      SCOPED_TRACE(i == 0 ? "y" : i == 1 ? "dL/dx" : "dL/dw");
      // float32 rounding: direct's error here is 1e-7..4e-7 of the largest value; Winograd's transforms (entries
      // 0, +-1, +-1/2) add a few roundings more, never an error of another order.
      EXPECT_LT(e_wino[i], 2e-6);
      EXPECT_LT(e_wino[i], 10 * e_direct[i] + 1e-7);
    }
    EXPECT_EQ(wino.y.sizes(), direct.y.sizes());
  }
}

TEST(WinogradConv, ResultsDoNotDependOnTheThreadCount) {
  auto gen = at::detail::createCPUGenerator(3);
  auto x = at::randn({3, 24, 13, 10}, gen), w = at::randn({16, 24, 3, 3}, gen), gy = at::randn({3, 16, 13, 10}, gen);
  const int before = at::get_num_threads();
  at::set_num_threads(1);
  const Conv one = run(x, w, gy, kF2);
  at::set_num_threads(2);
  const Conv two = run(x, w, gy, kF2);
  at::set_num_threads(before);
  EXPECT_TRUE(at::equal(one.y, two.y));
  EXPECT_TRUE(at::equal(one.dx, two.dx));
  EXPECT_TRUE(at::equal(one.dw, two.dw));
}

TEST(WinogradConv, NonContiguousInputs) {
  auto gen = at::detail::createCPUGenerator(5);
  auto x = at::randn({2, 9, 16, 20}, gen).transpose(2, 3);  // [2, 9, 20, 16], not contiguous
  auto w = at::randn({12, 9, 3, 3}, gen).permute({0, 1, 3, 2});  // strides of [12, 9, 3, 3] transposed
  auto gy = at::randn({2, 12, 20, 16}, gen);
  const Conv ref = run(x.to(at::kDouble), w.to(at::kDouble), gy, kDirect), wino = run(x, w, gy, kF2);
  EXPECT_LT(relative_error(wino.y, ref.y), 2e-6);
  EXPECT_LT(relative_error(wino.dx, ref.dx), 2e-6);
  EXPECT_LT(relative_error(wino.dw, ref.dw), 2e-6);
}

TEST(WinogradConv, AppliesOnlyWhereItShould) {
  set_conv_algorithm(ConvAlgorithm::WinogradF2x2);
  auto x = at::randn({1, 128, 8, 8}), w = at::randn({128, 128, 3, 3});
  EXPECT_TRUE(winograd_applies(x, w));
  EXPECT_FALSE(winograd_applies(x.narrow(1, 0, 64), w.narrow(0, 0, 64).narrow(1, 0, 64)));  // below 128 channels
  EXPECT_FALSE(winograd_applies(x.to(at::kBFloat16), w.to(at::kBFloat16)));
  EXPECT_FALSE(winograd_applies(x.to(at::kDouble), w.to(at::kDouble)));
  EXPECT_FALSE(winograd_applies(x, at::randn({128, 128, 1, 1})));
  {
    at::autocast::set_cpu_enabled(true);
    EXPECT_FALSE(winograd_applies(x, w));  // autocast's bf16 convolution wins there
    at::autocast::set_cpu_enabled(false);
  }
  expect_error([&] { winograd_conv3x3(x.to(at::kDouble), w.to(at::kDouble)); }, {"needs CPU float32"});
  expect_error([] { parse_conv_algorithm("fft"); }, {"--conv", "unknown convolution algorithm 'fft'"});
  EXPECT_EQ(parse_conv_algorithm("direct"), ConvAlgorithm::Direct);
  EXPECT_EQ(parse_conv_algorithm("winograd"), ConvAlgorithm::Winograd);
  EXPECT_EQ(parse_conv_algorithm("winograd-f2x2"), kF2);
  set_conv_algorithm(ConvAlgorithm::Winograd);  // F(4x4, 3x3) where this CPU has it, else ours
  EXPECT_EQ(winograd_kernel(), onednn_winograd_available() ? kF4 : kF2);
  if (onednn_winograd_available()) {
    EXPECT_EQ(parse_conv_algorithm("winograd-f4x4"), kF4);
    auto x = at::randn({16, 32, 32, 32}), w32 = at::randn({32, 32, 3, 3});
    EXPECT_TRUE(winograd_applies(x, w32));  // 32 channels: below F(2x2, 3x3)'s floor, not F(4x4, 3x3)'s
    EXPECT_FALSE(winograd_applies(x.narrow(0, 0, 4), w32));  // a quarter of the work: below the work floor
    EXPECT_FALSE(winograd_applies(x.narrow(1, 0, 3), w32.narrow(1, 0, 3)));  // the 3-channel input layer
    EXPECT_FALSE(winograd_applies(x.to(at::kDouble), w32.to(at::kDouble)));
    set_conv_algorithm(ConvAlgorithm::Winograd, {128, 16, 0});  // no work floor
    EXPECT_TRUE(winograd_applies(x.narrow(0, 0, 4), w32));
    EXPECT_FALSE(winograd_applies(x.narrow(2, 0, 8).narrow(3, 0, 8), w32));  // 8x8: below 16x16
  } else {
    expect_error([] { parse_conv_algorithm("winograd-f4x4"); }, {"--conv", "winograd-f4x4", "hint: --conv winograd-f2x2"});
  }
  set_conv_algorithm(ConvAlgorithm::Direct);
}

// oneDNN's F(4x4, 3x3) interpolates at 0, +-1, +-2 (transform entries up to 8): a few more float32 roundings than
// F(2x2, 3x3), still float32 rounding against a float64 reference; and the same bits from the same inputs.
TEST(WinogradConv, F4x4IsFloat32Accurate) {
  SKIP_WITHOUT_ONEDNN_WINOGRAD();
  auto gen = at::detail::createCPUGenerator(11);
  const Shape shapes[] = {{2, 16, 32, 16, 16}, {1, 32, 16, 17, 12}, {3, 48, 16, 9, 20}, {2, 64, 64, 32, 32}};
  int covered = 0;
  for (const auto& s : shapes) {
    SCOPED_TRACE(std::to_string(s.N) + "x" + std::to_string(s.C) + "->" + std::to_string(s.K) + " " +
                 std::to_string(s.H) + "x" + std::to_string(s.W));
    if (!onednn_winograd_supports(s.N, s.C, s.K, s.H, s.W)) continue;
    ++covered;
    auto x = at::randn({s.N, s.C, s.H, s.W}, gen);
    auto w = at::randn({s.K, s.C, 3, 3}, gen) / std::sqrt(9.0 * s.C);
    auto gy = at::randn({s.N, s.K, s.H, s.W}, gen);
    const Conv ref = run(x.to(at::kDouble), w.to(at::kDouble), gy, kDirect);
    const Conv a = run(x, w, gy, kF4), b = run(x, w, gy, kF4);
    const double e[] = {relative_error(a.y, ref.y), relative_error(a.dx, ref.dx), relative_error(a.dw, ref.dw)};
    std::cout << "[ rel err ] y " << e[0] << ", dL/dx " << e[1] << ", dL/dw " << e[2] << " (tol 1e-5)\n";
    for (double err : e) EXPECT_LT(err, 1e-5);
    EXPECT_TRUE(at::equal(a.y, b.y) && at::equal(a.dx, b.dx) && at::equal(a.dw, b.dw));
  }
  EXPECT_GE(covered, 3);  // odd and non-square sizes too, not just the easy ones
}

// The golden networks are small (16-64 channels, 8-16 px): with the floors lowered, every 3x3 layer of theirs
// that a kernel takes (encoder, decoder, attention blocks, resampling paths) runs through Winograd, and the
// outputs still match the official float32 run to the golden tests' tolerance.
void expect_golden_networks_match(ConvAlgorithm kernel) {
  set_conv_algorithm(kernel, {1, 1, 0});
  for (const char* name : {"ddpmpp_uncond", "ddpmpp_cond", "ncsnpp_uncond", "adm_cond"}) {
    SCOPED_TRACE(name);
    auto io = load_golden(std::string(name) + "_io_f32.safetensors");
    auto loaded = load_net(golden(std::string(name) + "_weights.safetensors"));
    at::NoGradGuard no_grad;
    at::Tensor labels = io.has("class_labels") ? io.get("class_labels") : at::Tensor();
    auto out = loaded.net->forward(io.get("F.x_in"), io.get("F.noise_labels"), labels);
    EXPECT_CLOSE(out, io.get("F.out"), 1e-5);
  }
  set_conv_algorithm(ConvAlgorithm::Direct);
}

TEST(WinogradConv, GoldenNetworksStillMatchInFloat32) { expect_golden_networks_match(kF2); }

TEST(WinogradConv, GoldenNetworksStillMatchInFloat32WithF4x4) {
  SKIP_WITHOUT_ONEDNN_WINOGRAD();
  expect_golden_networks_match(kF4);
}
