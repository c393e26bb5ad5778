#include "pidistill/util/threads.h"

#include "pidistill/util/error.h"

#include <ATen/Parallel.h>
#include <dlfcn.h>

#include <algorithm>

#include <cstdlib>
#include <string>
#include <thread>

namespace pidistill {

namespace {

// OpenBLAS (Debian's LibTorch does its matrix products there) keeps a thread pool of its own, as large as the
// machine, beside OpenMP's, and LibTorch does not size it. Its idle threads spin (sched_yield) and take cores
// from OpenMP's; one thread was 1.4-1.9x faster per PID step at --threads 2 (docs/PERFORMANCE.md): our matrix
// products are under 1% of a step's FLOPs, convolutions go to oneDNN. Looked up at run time: MKL builds lack it.
void use_one_blas_thread() {
  if (std::getenv("OPENBLAS_NUM_THREADS")) return;  // the user's choice
  using SetThreads = void (*)(int);
  if (auto set = reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) set(1);
}

}  // namespace

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
  use_one_blas_thread();
}

void share_threads_among(int workers) {
  if (workers <= 1) return;
  // A new thread takes its intra-op thread count from this global setting on its first parallel region.
  const int share = std::max(1, at::get_num_threads() / workers);
  at::set_num_threads(share);
}

}  // namespace pidistill
