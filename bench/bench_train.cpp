// Training throughput (images/s) of small DDPM++ networks at 32x32x1 on this machine, to size the bundled
// Fashion-MNIST teacher. Usage: bench_train [threads] [steps] [batch]
#include "pidistill/edm/train.h"
#include "pidistill/util/threads.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>

using namespace pidistill;

int main(int argc, char** argv) {
  int threads = argc > 1 ? std::atoi(argv[1]) : 0;
  int steps = argc > 2 ? std::atoi(argv[2]) : 5;
  int batch = argc > 3 ? std::atoi(argv[3]) : 64;
  set_threads(threads);
  auto gen = at::detail::createCPUGenerator(0);
  TrainData data{at::randint(0, 256, {1024, 1, 32, 32}, gen, at::kLong).to(at::kByte), {}, 0, "random"};

  struct Size {
    int cbase;
    std::vector<int> cres;
    int blocks;
    std::vector<int> attn;
  };
  std::vector<Size> sizes = {{16, {1, 2, 2}, 1, {16}}, {32, {1, 2, 2}, 1, {16}}, {32, {1, 2, 2}, 2, {16}},
                             {64, {1, 2, 2}, 1, {16}}};
  std::printf("threads %d, batch %d, %d timed steps after 1 warm-up step\n", at::get_num_threads(), batch, steps);
  std::printf("%-6s %-8s %-7s %-6s %12s %10s %10s\n", "cbase", "cres", "blocks", "attn", "parameters", "MB (f32)",
              "images/s");
  for (const auto& s : sizes) {
    TrainOptions o;
    o.net = net_config_preset("ddpmpp", 32, 1);
    o.net.model_channels = s.cbase;
    o.net.channel_mult = s.cres;
    o.net.num_blocks = s.blocks;
    o.net.attn_resolutions = s.attn;
    o.net.dropout = 0.13;
    o.batch = batch;
    o.lr_rampup_mimg = 0.001;
    o.progress = false;
    EdmTrainer trainer(o, data);
    int64_t params = 0;
    for (auto& p : trainer.net()->parameters()) params += p.numel();
    trainer.train_step();  // warm-up
    auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < steps; ++i) trainer.train_step();
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf("%-6d %-8s %-7d %-6s %12lld %10.2f %10.1f\n", s.cbase,
                (std::to_string(s.cres[0]) + "," + std::to_string(s.cres[1]) + "," + std::to_string(s.cres[2])).c_str(),
                s.blocks, s.attn.empty() ? "-" : std::to_string(s.attn[0]).c_str(), static_cast<long long>(params),
                params * 4 / 1e6, steps * batch / seconds);
    std::fflush(stdout);
  }
  return 0;
}
