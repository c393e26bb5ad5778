// LibTorch here starts with one intra-op thread; use the cores we have unless the user said otherwise.
#pragma once

namespace pidistill {

// threads <= 0: OMP_NUM_THREADS if set, else the number of cores.
void set_threads(int threads = 0);

}  // namespace pidistill
