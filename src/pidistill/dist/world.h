// The processes that train one model together, over PyTorch's c10d: Gloo for CPU tensors, NCCL for CUDA ones
// (when built with it). A World of one process has no store and no group, and its collectives do nothing.
#pragma once
#include "pidistill/dist/launch_env.h"

#include <ATen/core/Tensor.h>

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

namespace pidistill {

class World {
 public:
  World() = default;  // one process

  // Meets the other ranks through a TCP store at env.master_addr:master_port (served by rank 0, or by torchrun's
  // agent) and makes the process group for `device` ("cpu" -> Gloo, "cuda[:i]" -> NCCL). `timeout` bounds the
  // rendezvous and every later collective: a peer that dies or hangs makes this rank throw, never wait forever.
  static World connect(const LaunchEnv& env, const std::string& device, std::chrono::milliseconds timeout);

  int rank() const { return rank_; }
  int size() const { return size_; }
  bool is_main() const { return rank_ == 0; }  // the one rank that writes files and prints progress
  std::string describe() const;                // "rank 1 of 2 (mpirun, gloo)"

  // In place: every rank's tensors become root's. Tensors are packed into buckets of about `bucket_bytes`.
  void broadcast(std::vector<at::Tensor>& tensors, int root = 0) const;
  // In place: every rank's tensors become the sum over ranks, computed bucket by bucket with several buckets in
  // flight. All ranks must pass the same shapes in the same order.
  void all_reduce_sum(std::vector<at::Tensor>& tensors) const;
  // Sum over ranks of a few numbers (losses and counts for the log), in float64.
  std::vector<double> sum(std::vector<double> values) const;
  void barrier() const;

  std::size_t bucket_bytes = 25u << 20;  // as DistributedDataParallel's default bucket_cap_mb = 25

 private:
  struct Group;
  std::shared_ptr<Group> group_;  // null for one process
  int rank_ = 0, size_ = 1;
};

}  // namespace pidistill
