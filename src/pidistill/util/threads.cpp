#include "pidistill/util/threads.h"

#include "pidistill/util/error.h"

#include <ATen/Parallel.h>

#include <algorithm>

#include <cstdlib>
#include <string>
#include <thread>

namespace pidistill {

void set_threads(int threads) {
  // Why a cap: more threads than cores only spin-wait each other (10-100x slower here); 1000 is a typo.
  const int cores = std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  if (threads > 4 * cores)
    fail("--threads", std::to_string(threads) + " is more than 4x the " + std::to_string(cores) +
                          " cores of this machine; hint: --threads " + std::to_string(cores));
  if (threads < 0) fail("--threads", "must be >= 1 (or 0 for the default)");
  if (threads <= 0) {
    // Why: OMP_NUM_THREADS is how torchrun and batch schedulers say how many cores a process may use.
    if (const char* env = std::getenv("OMP_NUM_THREADS")) threads = std::atoi(env);
  }
  if (threads <= 0) threads = static_cast<int>(std::thread::hardware_concurrency());
  if (threads <= 0) threads = 1;
  at::set_num_threads(threads);
}

void share_threads_among(int workers) {
  if (workers <= 1) return;
  // A new thread takes its intra-op thread count from this global setting on its first parallel region.
  at::set_num_threads(std::max(1, at::get_num_threads() / workers));
}

}  // namespace pidistill
