// Winograd F(2x2, 3x3) convolution (--conv winograd): as accurate as LibTorch's direct float32 convolution against
// a float64 reference, in the output and both gradients; independent of the thread count; and with it in every
// 3x3 layer the golden networks still match the official float32 outputs.
#include "pidistill/nets/net_file.h"
#include "pidistill/nets/winograd_conv.h"
#include "pidistill/util/error.h"
#include "test_common.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/autocast_mode.h>

#include <vector>

using namespace pidistill;
using pidistill::test::expect_error;
using pidistill::test::golden;
using pidistill::test::load_golden;

namespace {

struct Conv {
  at::Tensor y, dx, dw;
};

// y = conv(x, w) and the gradients of sum(y * gy), by winograd_conv3x3 or at::conv2d in x's dtype.
Conv run(const at::Tensor& x0, const at::Tensor& w0, const at::Tensor& gy, bool winograd) {
  auto x = x0.detach().requires_grad_(), w = w0.detach().requires_grad_();
  auto y = winograd ? winograd_conv3x3(x, w) : at::conv2d(x, w, {}, 1, 1);
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

}  // namespace

TEST(WinogradConv, AsAccurateAsDirectConvolution) {
  auto gen = at::detail::createCPUGenerator(7);
  for (const auto& s : kShapes) {
    SCOPED_TRACE(std::to_string(s.N) + "x" + std::to_string(s.C) + "->" + std::to_string(s.K) + " " +
                 std::to_string(s.H) + "x" + std::to_string(s.W));
    auto x = at::randn({s.N, s.C, s.H, s.W}, gen);
    auto w = at::randn({s.K, s.C, 3, 3}, gen) / std::sqrt(9.0 * s.C);
    auto gy = at::randn({s.N, s.K, s.H, s.W}, gen);
    const Conv ref = run(x.to(at::kDouble), w.to(at::kDouble), gy, false);
    const Conv direct = run(x, w, gy, false), wino = run(x, w, gy, true);
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
  const Conv one = run(x, w, gy, true);
  at::set_num_threads(2);
  const Conv two = run(x, w, gy, true);
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
  const Conv ref = run(x.to(at::kDouble), w.to(at::kDouble), gy, false), wino = run(x, w, gy, true);
  EXPECT_LT(relative_error(wino.y, ref.y), 2e-6);
  EXPECT_LT(relative_error(wino.dx, ref.dx), 2e-6);
  EXPECT_LT(relative_error(wino.dw, ref.dw), 2e-6);
}

TEST(WinogradConv, AppliesOnlyWhereItShould) {
  set_conv_algorithm(ConvAlgorithm::Winograd);
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
  set_conv_algorithm(ConvAlgorithm::Direct);
}

// The golden networks are small (16-64 channels): with the channel floor lowered to 1, every 3x3 layer of theirs
// (encoder, decoder, attention blocks, resampling paths) runs through Winograd, and the outputs still match the
// official float32 run to the golden tests' tolerance.
TEST(WinogradConv, GoldenNetworksStillMatchInFloat32) {
  set_conv_algorithm(ConvAlgorithm::Winograd, 1);
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
