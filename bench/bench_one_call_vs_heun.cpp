// Generation speed through the library's own path (make_image_generator, as `pidistill generate` draws): a PID
// student's one call against the teacher's Heun sampler (18 steps = 35 calls), batch-1 latency and batch-B
// throughput; one JSON line per measurement, for bench/compare_generate.sh.
// Usage: bench_one_call_vs_heun TEACHER STUDENT [batch=64] [repeats=5] [threads=0] [conv=direct]
// (conv: as pidistill's --conv)
#include "pidistill/nets/net_file.h"
#include "pidistill/nets/winograd_conv.h"
#include "pidistill/pid/image_generator.h"
#include "pidistill/util/threads.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

using namespace pidistill;

namespace {

// Median seconds of `repeats` calls after one untimed warm-up call.
double median_seconds(const ImageGenerator& g, const at::Tensor& latents, int repeats) {
  g.sample(latents, at::Tensor());
  std::vector<double> s;
  for (int i = 0; i < repeats; ++i) {
    const auto start = std::chrono::steady_clock::now();
    g.sample(latents, at::Tensor());
    s.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  std::sort(s.begin(), s.end());
  return s[s.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s TEACHER STUDENT [batch=64] [repeats=5] [threads=0] [conv=direct]\n", argv[0]);
    return 2;
  }
  const int batch = argc > 3 ? std::atoi(argv[3]) : 64, repeats = argc > 4 ? std::atoi(argv[4]) : 5;
  set_threads(argc > 5 ? std::atoi(argv[5]) : 0);
  if (argc > 6) set_conv_algorithm(parse_conv_algorithm(argv[6]));
  at::manual_seed(0);
  struct Case {
    const char* what;
    const char* path;
  };
  for (const Case& c : {Case{"student", argv[2]}, Case{"teacher", argv[1]}}) {
    const LoadedNet net = load_net(c.path);
    const ImageGenerator g = make_image_generator(net, {});
    const auto shape = [&](int64_t b) {
      return std::vector<int64_t>{b, net.config.img_channels, net.config.img_resolution, net.config.img_resolution};
    };
    // The teacher's batch-1 latency is 35 calls: fewer repeats keep the run short.
    const double one = median_seconds(g, at::randn(shape(1)), g.student ? repeats * 4 : repeats);
    const double many = median_seconds(g, at::randn(shape(batch)), g.student ? repeats : 1);
    std::printf(
        "{\"side\": \"cpp\", \"what\": \"%s\", \"calls\": %d, \"threads\": %d, \"batch1_ms\": %.3f, "
        "\"batch\": %d, \"img_per_s\": %.3f}\n",
        c.what, g.nfe, at::get_num_threads(), one * 1e3, batch, batch / many);
    std::fflush(stdout);
  }
  return 0;
}
