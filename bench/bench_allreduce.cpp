// Gradient all-reduce cost over c10d Gloo: milliseconds to sum float32 gradients of a given size over the ranks,
// the communication part of a multi-process step (docs/SCALING.md). Run one process per rank, e.g.
//   torchrun --no_python --nproc_per_node=2 -r 2 -t 2 build/bench_allreduce 5 55.7
// Usage: bench_allreduce [repeats] [million parameters...]   (defaults: 5, the bundled teacher's 1.26 and 55.7)
#include "pidistill/dist/launch_env.h"
#include "pidistill/dist/world.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

using namespace pidistill;

int main(int argc, char** argv) try {
  int repeats = argc > 1 ? std::atoi(argv[1]) : 5;
  std::vector<double> sizes;
  for (int i = 2; i < argc; ++i) sizes.push_back(std::atof(argv[i]));
  if (sizes.empty()) sizes = {1.26, 55.7};
  World world = World::connect(launch_env(), "cpu", std::chrono::seconds(60));
  if (world.is_main()) std::printf("%s, %d repeats\n%12s %10s %12s %10s\n", world.describe().c_str(), repeats,
                                   "parameters", "MB", "median ms", "GB/s");
  for (double millions : sizes) {
    auto n = static_cast<int64_t>(millions * 1e6);
    // Like a network's gradients: many tensors of assorted sizes (here 1000 of them), packed into 25 MB buckets.
    std::vector<at::Tensor> grads;
    for (int64_t done = 0, k = 0; done < n; ++k) {
      int64_t size = std::min<int64_t>(n - done, std::max<int64_t>(1, n / 1000) * (1 + k % 3));
      grads.push_back(at::ones({size}));
      done += size;
    }
    std::vector<double> ms;
    for (int r = 0; r <= repeats; ++r) {
      world.barrier();
      auto start = std::chrono::steady_clock::now();
      world.all_reduce_sum(grads);
      double t = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
      if (r > 0) ms.push_back(t);  // the first one warms up Gloo's buffers
    }
    std::sort(ms.begin(), ms.end());
    double median = ms[ms.size() / 2], mb = n * 4 / 1e6;
    if (world.is_main()) std::printf("%12lld %10.1f %12.1f %10.2f\n", static_cast<long long>(n), mb, median, mb / median);
  }
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "error: %s\n", e.what());
  return 1;
}
