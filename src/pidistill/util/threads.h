// LibTorch here starts with one intra-op thread; use the cores we have unless the user said otherwise.
#pragma once

namespace pidistill {

// threads <= 0: OMP_NUM_THREADS if set, else the number of cores. OpenBLAS gets one thread of its own unless
// OPENBLAS_NUM_THREADS says otherwise (its spinning pool slows the OpenMP threads).
void set_threads(int threads = 0);

// Before `workers` threads run LibTorch work at once: each gets an equal share of the intra-op threads (at
// least one), so that together they use what set_threads gave and do not oversubscribe the cores.
void share_threads_among(int workers);

}  // namespace pidistill
