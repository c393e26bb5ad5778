// A batch's gradient computed by several threads at once, each on its own micro-batches, summed in a fixed order
// so that a run stays deterministic: on a few cores this beats intra-op threading, which small kernels starve.
#pragma once
#include "pidistill/run/batch_slice.h"

#include <ATen/ATen.h>

#include <functional>
#include <string>
#include <vector>

namespace pidistill {

// The micro-batches of `slice` (`micro` images each; 0: slice / workers, or the whole slice for one worker),
// grouped contiguously by worker: worker k gets the k-th of `workers` groups. Error naming `micro_option` or
// --workers if they do not fit.
std::vector<std::vector<BatchSlice>> worker_micro_batches(const BatchSlice& slice, int64_t micro, int workers,
                                                          const std::string& micro_option = "--batch-gpu");

// Adds d loss_of(mb, k) / d params to params' .grad for every micro-batch mb of worker k.
// workers == 1: in this thread, by backward() (the plain path, unchanged). workers > 1: one thread per worker;
// each sums its micro-batches' gradients in order, then the workers' sums are added in worker order. loss_of
// may only change state of its own worker index k. An exception in a worker is rethrown here after all stopped.
void accumulate_gradients(const std::vector<at::Tensor>& params, const std::vector<std::vector<BatchSlice>>& parts,
                          const std::function<at::Tensor(const BatchSlice& micro, int worker)>& loss_of);

}  // namespace pidistill
