#include "pidistill/dist/world.h"

#include "pidistill/util/error.h"

#include <torch/torch.h>
#include <torch/version.h>

#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#ifdef PIDISTILL_WITH_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <cstdlib>
#include <functional>
#include <utility>

namespace pidistill {

// Gloo and NCCL groups derive from ProcessGroup in LibTorch 1.13 and from Backend in 2.x.
#if TORCH_VERSION_MAJOR >= 2
using GroupBase = c10d::Backend;
#else
using GroupBase = c10d::ProcessGroup;
#endif

struct World::Group {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<GroupBase> pg;
  std::string source, backend;
  std::chrono::milliseconds timeout{0};
};

namespace {

// c10d's messages carry a C++ backtrace after the first line; the user needs the first line and what it means.
std::string first_line(const std::string& text) {
  auto end = text.find('\n');
  return text.substr(0, end);
}

bool is_loopback(const std::string& host) {
  return host == "localhost" || host.rfind("127.", 0) == 0 || host == "::1";
}

}  // namespace

World World::connect(const LaunchEnv& env, const std::string& device, std::chrono::milliseconds timeout) {
  World world;
  world.rank_ = env.rank;
  world.size_ = env.world_size;
  if (env.world_size == 1) return world;
  auto group = std::make_shared<Group>();
  group->source = env.source;
  group->timeout = timeout;
  std::string where = "rank " + std::to_string(env.rank) + " of " + std::to_string(env.world_size);
  try {
    c10d::TCPStoreOptions options;
    options.port = static_cast<std::uint16_t>(env.master_port);
    options.isServer = env.rank == 0 && !env.agent_store;
    options.numWorkers = static_cast<std::size_t>(env.world_size);
    options.waitWorkers = false;  // the process group's own handshake waits for everyone, under our timeout
    options.timeout = timeout;
    auto tcp = c10::make_intrusive<c10d::TCPStore>(env.master_addr, options);
    group->store = c10::make_intrusive<c10d::PrefixStore>(env.store_prefix, tcp);
    const bool cuda = device.rfind("cuda", 0) == 0;
    std::string backend = cuda ? "nccl" : "gloo";
    // Why a choice: NCCL refuses two ranks on one GPU; with PIDISTILL_DIST_BACKEND=gloo they meet over Gloo, which
    // takes CUDA tensors through host memory (scripts/device/check.sh does this on a one-GPU machine).
    const char* forced = std::getenv("PIDISTILL_DIST_BACKEND");
    if (forced != nullptr && *forced != '\0') backend = forced;
    if (backend != "gloo" && backend != "nccl")
      fail("PIDISTILL_DIST_BACKEND", "'" + backend + "' is not a backend; expected gloo or nccl");
    if (backend == "nccl" && !cuda) fail("PIDISTILL_DIST_BACKEND", "nccl needs --device cuda");
    if (backend == "nccl") {
#ifdef PIDISTILL_WITH_NCCL
      auto nccl = c10d::ProcessGroupNCCL::Options::create();
      nccl->timeout = timeout;
      group->pg = c10::make_intrusive<c10d::ProcessGroupNCCL>(group->store, env.rank, env.world_size, nccl);
      group->backend = "nccl";
#else
      fail(where, "--device " + device + " with several processes needs a build with NCCL (see docs/BUILDING.md)");
#endif
    } else {
      auto gloo = c10d::ProcessGroupGloo::Options::create(timeout);
      const char* ifname = std::getenv("GLOO_SOCKET_IFNAME");
      if (ifname != nullptr && *ifname != '\0')
        gloo->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
      else if (is_loopback(env.master_addr))
        gloo->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
      else
        gloo->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
      group->pg = c10::make_intrusive<c10d::ProcessGroupGloo>(group->store, env.rank, env.world_size, gloo);
      group->backend = "gloo";
    }
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    fail(where + " (" + env.source + ")",
         "could not meet the other processes at " + env.master_addr + ":" + std::to_string(env.master_port) +
             " within " + std::to_string(timeout.count() / 1000) + " s: " + first_line(e.what()));
  }
  world.group_ = std::move(group);
  return world;
}

std::string World::describe() const {
  if (!group_) return "one process";
  return "rank " + std::to_string(rank_) + " of " + std::to_string(size_) + " (" + group_->source + ", " +
         group_->backend + ")";
}

namespace {

// Runs one collective and turns c10d's failure (a peer that exited, a timeout) into our one-line error.
void checked(const World& world, const char* what, const std::function<void()>& body, std::chrono::milliseconds t) {
  try {
    body();
  } catch (const std::exception& e) {
    fail(world.describe(), std::string(what) + " failed: another process exited or stopped answering (timeout " +
                               std::to_string(t.count() / 1000) + " s): " + first_line(e.what()));
  }
}

// Consecutive runs of tensors of one dtype and device, each run at most `bytes` (a larger tensor is its own).
std::vector<std::pair<size_t, size_t>> buckets(const std::vector<at::Tensor>& tensors, size_t bytes) {
  std::vector<std::pair<size_t, size_t>> out;
  size_t begin = 0, filled = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    size_t size = tensors[i].numel() * tensors[i].element_size();
    bool other_kind = i > begin && (tensors[i].scalar_type() != tensors[begin].scalar_type() ||
                                    tensors[i].device() != tensors[begin].device());
    if (i > begin && (other_kind || filled + size > bytes)) {
      out.emplace_back(begin, i);
      begin = i, filled = 0;
    }
    filled += size;
  }
  if (begin < tensors.size()) out.emplace_back(begin, tensors.size());
  return out;
}

at::Tensor flatten(const std::vector<at::Tensor>& tensors, std::pair<size_t, size_t> range) {
  std::vector<at::Tensor> flat;
  for (size_t i = range.first; i < range.second; ++i) flat.push_back(tensors[i].reshape({-1}));
  return torch::cat(flat);
}

void unflatten(const at::Tensor& flat, std::vector<at::Tensor>& tensors, std::pair<size_t, size_t> range) {
  int64_t offset = 0;
  for (size_t i = range.first; i < range.second; ++i) {
    int64_t n = tensors[i].numel();
    tensors[i].copy_(flat.narrow(0, offset, n).view(tensors[i].sizes()));
    offset += n;
  }
}

}  // namespace

void World::broadcast(std::vector<at::Tensor>& tensors, int root) const {
  if (!group_) return;
  torch::NoGradGuard no_grad;
  checked(*this, "broadcast", [&] {
    for (auto range : buckets(tensors, bucket_bytes)) {
      std::vector<at::Tensor> flat{flatten(tensors, range)};
      c10d::BroadcastOptions options;
      options.rootRank = root;
      group_->pg->broadcast(flat, options)->wait(group_->timeout);
      unflatten(flat[0], tensors, range);
    }
  }, group_->timeout);
}

void World::all_reduce_sum(std::vector<at::Tensor>& tensors) const {
  if (!group_) return;
  torch::NoGradGuard no_grad;
  checked(*this, "gradient all-reduce", [&] {
    auto ranges = buckets(tensors, bucket_bytes);
    // Launch every bucket before waiting for the first: Gloo works on them while we pack the next.
    std::vector<std::vector<at::Tensor>> flats;
    std::vector<c10::intrusive_ptr<c10d::Work>> works;
    for (auto range : ranges) {
      flats.push_back({flatten(tensors, range)});
      works.push_back(group_->pg->allreduce(flats.back()));
    }
    for (size_t b = 0; b < ranges.size(); ++b) {
      works[b]->wait(group_->timeout);
      unflatten(flats[b][0], tensors, ranges[b]);
    }
  }, group_->timeout);
}

std::vector<double> World::sum(std::vector<double> values) const {
  if (!group_ || values.empty()) return values;
  std::vector<at::Tensor> t{torch::tensor(values, torch::kFloat64)};
  all_reduce_sum(t);
  auto acc = t[0].accessor<double, 1>();
  for (size_t i = 0; i < values.size(); ++i) values[i] = acc[static_cast<int64_t>(i)];
  return values;
}

void World::barrier() const {
  if (!group_) return;
  checked(*this, "barrier", [&] { group_->pg->barrier()->wait(group_->timeout); }, group_->timeout);
}

}  // namespace pidistill
