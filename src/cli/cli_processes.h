// The processes of a training command: joined through the launcher's environment (torchrun, mpirun, srun or
// variables set by hand) for train and distill; one process when no launcher set anything.
#pragma once
#include "pidistill/dist/world.h"
#include "pidistill/dist/world_sync.h"
#include "pidistill/run/processes.h"

#include <CLI/CLI.hpp>

#include <memory>
#include <string>

namespace pidistill::cli {

struct CliProcesses {
  World world;
  std::unique_ptr<WorldSync> sync;  // null for one process
  RunProcesses processes() const { return {world.rank(), world.size(), sync.get()}; }
  bool is_main() const { return world.is_main(); }
};

// --dist-timeout: seconds to wait for the other processes, at the start and at every step.
void add_process_options(CLI::App& cmd, double& timeout_seconds);

// Meets the other processes; `device` "cuda" becomes "cuda:LOCAL_RANK" with several processes (one GPU each).
std::unique_ptr<CliProcesses> join_processes(std::string& device, double timeout_seconds);

}  // namespace pidistill::cli
