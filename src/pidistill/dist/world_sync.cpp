#include "pidistill/dist/world_sync.h"

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>

namespace pidistill {

void WorldSync::sum_gradients(const std::vector<at::Tensor>& params) {
  // Which parameters got a gradient anywhere: the same on every process when the graph is (one network, one
  // loss), but a parameter reached on one process only must still be summed everywhere, as zero where absent.
  std::vector<double> reached(params.size());
  for (size_t i = 0; i < params.size(); ++i) reached[i] = params[i].grad().defined() ? 1 : 0;
  reached = world_.sum(reached);
  at::NoGradGuard no_grad;
  std::vector<at::Tensor> grads;
  for (size_t i = 0; i < params.size(); ++i) {
    if (reached[i] == 0) continue;  // nowhere: stays undefined, so the optimiser skips it as with one process
    at::Tensor p = params[i];
    if (!p.grad().defined()) p.mutable_grad() = at::zeros_like(p);
    grads.push_back(p.grad());
  }
  world_.all_reduce_sum(grads);
}

void WorldSync::sum(std::vector<double>& values) { values = world_.sum(values); }

void WorldSync::broadcast(const std::vector<at::Tensor>& tensors) {
  std::vector<at::Tensor> handles = tensors;  // same storages: the broadcast writes into them
  world_.broadcast(handles);
}

bool WorldSync::any(bool flag) { return world_.sum({flag ? 1.0 : 0.0})[0] > 0; }

}  // namespace pidistill
