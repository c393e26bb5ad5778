// One-call generation (a PID student, or a teacher file read as the student at initialisation) timed per call:
// median latency and images/s at a batch size, on cpu or cuda. Each timed call includes copying the latents to
// the device and the images back, which is what a caller of one call waits for (and what synchronises CUDA).
//   bench_generate NET DEVICE BATCH [CALLS=20] [WARMUP=3]    -> one JSON line on stdout
#include "pidistill/nets/net_file.h"
#include "pidistill/pid/image_generator.h"

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <vector>

using namespace pidistill;

int main(int argc, char** argv) try {
  if (argc < 4) {
    std::fprintf(stderr, "usage: bench_generate NET DEVICE BATCH [CALLS] [WARMUP]\n");
    return 2;
  }
  const std::string net = argv[1];
  const at::Device device(argv[2]);
  const int64_t batch = std::atoll(argv[3]);
  const int calls = argc > 4 ? std::atoi(argv[4]) : 20, warmup = argc > 5 ? std::atoi(argv[5]) : 3;
  LoadedNet loaded = load_net(net);
  loaded.net->to(device, at::kFloat);
  loaded.net->eval();
  GeneratorOptions options;
  options.as_student = true;  // a student file stays a student; a teacher file is the student at initialisation
  auto sample = make_image_generator(loaded, options).sample;
  const auto& c = loaded.config;
  at::Tensor latents = at::randn({batch, c.img_channels, c.img_resolution, c.img_resolution});  // [B, C, H, W]
  at::Tensor labels;
  if (c.label_dim > 0) labels = at::one_hot(at::zeros({batch}, at::kLong), c.label_dim).to(device, at::kDouble);
  at::NoGradGuard no_grad;
  std::vector<double> ms;
  for (int i = 0; i < warmup + calls; ++i) {
    auto begin = std::chrono::steady_clock::now();
    at::Tensor x = sample(latents.to(device), labels).to(at::kCPU);  // [B, C, H, W] float64
    double t = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - begin).count();
    if (i >= warmup) ms.push_back(t);
  }
  std::sort(ms.begin(), ms.end());
  const double median = ms[ms.size() / 2];
  std::printf("{\"net\": \"%s\", \"device\": \"%s\", \"batch\": %lld, \"calls\": %d, \"median_ms\": %.3f, "
              "\"min_ms\": %.3f, \"img_per_s\": %.1f}\n",
              net.c_str(), device.str().c_str(), static_cast<long long>(batch), calls, median, ms.front(),
              batch / (median / 1000));
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "bench_generate: %s\n", e.what());
  return 1;
}
