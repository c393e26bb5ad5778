// The run harness's ProcessSync over a c10d World: what the processes of a multi-process run agree on each step
// (gradient sums, statistics, the starting weights, stop decisions).
#pragma once
#include "pidistill/dist/world.h"
#include "pidistill/run/processes.h"

namespace pidistill {

class WorldSync : public ProcessSync {
 public:
  explicit WorldSync(const World& world) : world_(world) {}
  void sum_gradients(const std::vector<at::Tensor>& params) override;
  void sum(std::vector<double>& values) override;
  void broadcast(const std::vector<at::Tensor>& tensors) override;
  bool any(bool flag) override;

 private:
  const World& world_;
};

}  // namespace pidistill
