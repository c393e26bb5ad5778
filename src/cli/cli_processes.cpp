#include "cli/cli_processes.h"

#include "cli/commands.h"

#include <ATen/Context.h>

#include <algorithm>
#include <chrono>

namespace pidistill::cli {

void add_process_options(CLI::App& cmd, double& timeout_seconds) {
  cmd.add_option("--dist-timeout", timeout_seconds,
                 "Seconds to wait for the other processes of a multi-process run (torchrun, mpirun, srun)")
      ->check(kFinitePositive)
      ->capture_default_str();
}

std::unique_ptr<CliProcesses> join_processes(std::string& device, double timeout_seconds) {
  auto out = std::make_unique<CliProcesses>();
  LaunchEnv env = launch_env();
  // One GPU per local rank; where ranks outnumber the GPUs (a check on a one-GPU machine) they share them.
  if (env.world_size > 1 && device == "cuda") {
    const int gpus = std::max<int>(1, static_cast<int>(at::getNumGPUs()));
    device = "cuda:" + std::to_string(env.local_rank % gpus);
  }
  auto timeout = std::chrono::milliseconds(static_cast<int64_t>(timeout_seconds * 1000));
  out->world = World::connect(env, device, timeout);
  if (out->world.size() > 1) out->sync = std::make_unique<WorldSync>(out->world);
  return out;
}

}  // namespace pidistill::cli
