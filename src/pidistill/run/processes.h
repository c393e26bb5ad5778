// The processes of one training run: this one's rank, how many there are, and how they agree on each step.
// One process (the default) syncs nothing and writes every output.
#pragma once
#include "pidistill/run/batch_slice.h"

#include <ATen/core/Tensor.h>

#include <vector>

namespace pidistill {

// What the processes of a multi-process run agree on (c10d all-reduce in src/pidistill/dist).
// Convention of the trainers: each process's gradients are of its slice's share of the global-batch loss
// (per-sample losses summed over the slice, divided by the *global* batch size), so summing them over the
// processes gives the gradient one process computes for the whole batch.
class ProcessSync {
 public:
  virtual ~ProcessSync() = default;
  // Sums every parameter's .grad() over the processes, in place; called after the last backward of a step and
  // before the optimiser step. All processes pass the same parameters in the same order. An undefined grad
  // (no backward reached the parameter) counts as zero.
  virtual void sum_gradients(const std::vector<at::Tensor>& params) = 0;
  // Sums a step's statistics (loss sums, counts, per-bin tallies) over the processes, in place, so that every
  // process takes the same decisions from them (skip a non-finite step, loss-driven index draws).
  virtual void sum(std::vector<double>& values) = 0;
  // Rank 0's values of `tensors` to every process, in place: the weights (and EMA copies) a run starts or
  // resumes from, so that all processes train the same network.
  virtual void broadcast(const std::vector<at::Tensor>& tensors) = 0;
  // True on every process when `flag` is true on any (a stop request, the --minutes budget), so that all
  // stop after the same step.
  virtual bool any(bool flag) = 0;
};

struct RunProcesses {
  int rank = 0;
  int world_size = 1;
  ProcessSync* sync = nullptr;  // null: one process, nothing to agree on

  // Only rank 0 writes the run directory, checkpoints, sample grids, stats lines and the progress bar.
  bool writes_outputs() const { return rank == 0; }
  // This process's part of a global batch of `batch` images.
  BatchSlice slice(int64_t batch) const { return rank_slice(batch, rank, world_size); }

  // Between backward and the optimiser step: sums gradients and `stats` over the processes (no-op for one).
  void sync_step(const std::vector<at::Tensor>& params, std::vector<double>& stats) const {
    if (!sync) return;
    sync->sum_gradients(params);
    sync->sum(stats);
  }
  bool any(bool flag) const { return sync ? sync->any(flag) : flag; }
  void broadcast(const std::vector<at::Tensor>& tensors) const {
    if (sync) sync->broadcast(tensors);
  }
};

}  // namespace pidistill
