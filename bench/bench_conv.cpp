// The 3x3 convolutions of a PID step, direct (at::conv2d) against Winograd (F(4x4, 3x3) where the CPU has it, else
// F(2x2, 3x3); f2x2 / f4x4 pick one), on CPU in float32: median time of forward and of forward + backward per
// shape, interleaved, with the largest relative difference of y, dL/dx and dL/dw between the two.
//   bench_conv [ROUNDS=5] [f2x2|f4x4] [N C K H ...]  -> one JSON line per shape (default: CIFAR-10 DDPM++ shapes)
#include "pidistill/nets/winograd_conv.h"
#include "pidistill/util/threads.h"

#include <ATen/ATen.h>
#include <torch/autograd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <functional>
#include <string>
#include <vector>

using namespace pidistill;

namespace {
double median_ms(const std::function<void()>& fn, int rounds) {
  fn();
  std::vector<double> ms;
  for (int r = 0; r < rounds; ++r) {
    auto begin = std::chrono::steady_clock::now();
    fn();
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - begin).count());
  }
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}
double relative_difference(const at::Tensor& a, const at::Tensor& b) {
  return (a - b).abs().max().item<double>() / b.abs().max().item<double>();
}
}  // namespace

int main(int argc, char** argv) try {
  set_threads();
  const int rounds = argc > 1 ? std::atoi(argv[1]) : 5;
  int first_shape = 2;
  set_conv_algorithm(ConvAlgorithm::Winograd);
  if (argc > 2 && (std::string(argv[2]) == "f2x2" || std::string(argv[2]) == "f4x4")) {
    set_conv_algorithm(parse_conv_algorithm(std::string("winograd-") + argv[2]));
    first_shape = 3;
  }
  const ConvAlgorithm kernel = winograd_kernel();
  std::vector<std::vector<int64_t>> shapes;
  for (int i = first_shape; i + 3 < argc; i += 4)
    shapes.push_back({std::atoll(argv[i]), std::atoll(argv[i + 1]), std::atoll(argv[i + 2]), std::atoll(argv[i + 3])});
  if (shapes.empty()) shapes = {{8, 256, 256, 32}, {8, 256, 256, 16}, {8, 256, 256, 8}, {8, 128, 256, 32}};
  at::manual_seed(0);
  for (const auto& s : shapes) {
    const int64_t N = s[0], C = s[1], K = s[2], H = s[3];
    auto x = at::randn({N, C, H, H}).requires_grad_();
    auto w = (at::randn({K, C, 3, 3}) / std::sqrt(9.0 * C)).requires_grad_();
    auto gy = at::randn({N, K, H, H});
    auto direct = [&] { return at::conv2d(x, w, {}, 1, 1); };
    auto wino = [&] { return winograd_conv3x3(x, w, kernel); };
    auto grads = [&](const std::function<at::Tensor()>& f) {
      x.mutable_grad() = at::Tensor();
      w.mutable_grad() = at::Tensor();
      f().backward(gy);
      return std::vector<at::Tensor>{x.grad().clone(), w.grad().clone()};
    };
    at::Tensor y0, y1;
    {
      at::NoGradGuard no_grad;
      y0 = direct();
      y1 = wino();
    }
    auto g0 = grads(direct), g1 = grads(wino);
    double fd = 1e30, fw = 1e30, bd = 1e30, bw = 1e30;
    for (int r = 0; r < 3; ++r) {  // interleaved; the best median of three
      at::NoGradGuard no_grad;
      fd = std::min(fd, median_ms([&] { direct(); }, rounds));
      fw = std::min(fw, median_ms([&] { wino(); }, rounds));
    }
    for (int r = 0; r < 3; ++r) {
      bd = std::min(bd, median_ms([&] { grads(direct); }, rounds));
      bw = std::min(bw, median_ms([&] { grads(wino); }, rounds));
    }
    const double gflop = 2.0 * N * K * C * 9 * H * H / 1e9;
    std::printf("{\"winograd\": \"%s\", \"N\": %lld, \"C\": %lld, \"K\": %lld, \"H\": %lld, \"forward_ms\": {\"direct\": %.2f, \"winograd\": %.2f}, "
                "\"forward_backward_ms\": {\"direct\": %.2f, \"winograd\": %.2f}, \"speedup\": {\"forward\": %.2f, "
                "\"forward_backward\": %.2f}, \"direct_gflops\": %.1f, \"rel_diff\": {\"y\": %.1e, \"dx\": %.1e, \"dw\": %.1e}}\n",
                kernel == ConvAlgorithm::WinogradF4x4 ? "f4x4" : "f2x2", (long long)N, (long long)C, (long long)K,
                (long long)H, fd, fw, bd, bw, fd / fw, bd / bw,
                gflop / (fd / 1000), relative_difference(y1, y0), relative_difference(g1[0], g0[0]),
                relative_difference(g1[1], g0[1]));
    std::fflush(stdout);
  }
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "bench_conv: %s\n", e.what());
  return 1;
}
