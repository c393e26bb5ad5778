// Who this process is in a multi-process run, read from the launcher's environment (torchrun, mpirun, Slurm, or
// variables set by hand); one process with no such variables is a world of one and needs no store.
#pragma once
#include <functional>
#include <string>

namespace pidistill {

struct LaunchEnv {
  int rank = 0;             // 0 .. world_size-1; rank 0 alone writes checkpoints, grids, logs and progress
  int world_size = 1;
  int local_rank = 0;       // index on this machine: picks the GPU (cuda:local_rank)
  std::string master_addr;  // where rank 0's TCP store listens (MASTER_ADDR; 127.0.0.1 on one machine)
  int master_port = 29500;  // MASTER_PORT (torch's default)
  bool agent_store = false; // torchrun's agent already serves the store: no rank may start one
  std::string source;       // which launcher the values came from, for messages: "torchrun", "mpirun", ...
  std::string store_prefix; // keys of this run in the store (a torchrun restart gets fresh ones)
};

// Reads RANK/WORLD_SIZE/LOCAL_RANK/MASTER_ADDR/MASTER_PORT, else OMPI_COMM_WORLD_* (Open MPI), else SLURM_PROCID/
// SLURM_NTASKS/SLURM_LOCALID (srun). Throws a one-line Error naming the variable for a value that is not a
// number in range, and for a multi-machine launch without MASTER_ADDR. `get` is getenv (replaceable for tests).
LaunchEnv launch_env(const std::function<const char*(const char*)>& get = nullptr);

}  // namespace pidistill
