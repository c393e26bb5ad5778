#include "pidistill/util/threads.h"

#include <ATen/Parallel.h>

#include <cstdlib>
#include <thread>

namespace pidistill {

void set_threads(int threads) {
  if (threads <= 0) {
    // Why: OMP_NUM_THREADS is how torchrun and batch schedulers say how many cores a process may use.
    if (const char* env = std::getenv("OMP_NUM_THREADS")) threads = std::atoi(env);
  }
  if (threads <= 0) threads = static_cast<int>(std::thread::hardware_concurrency());
  if (threads <= 0) threads = 1;
  at::set_num_threads(threads);
}

}  // namespace pidistill
