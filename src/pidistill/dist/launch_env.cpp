#include "pidistill/dist/launch_env.h"

#include "pidistill/util/error.h"

#include <cerrno>
#include <cstdlib>
#include <string>

namespace pidistill {
namespace {

// The integer in variable `name`, or `fallback` when it is unset or empty.
long env_int(const std::function<const char*(const char*)>& get, const char* name, long fallback, long lo, long hi) {
  const char* text = get(name);
  if (text == nullptr || *text == '\0') return fallback;
  errno = 0;
  char* end = nullptr;
  long value = std::strtol(text, &end, 10);
  if (errno != 0 || *end != '\0' || value < lo || value > hi)
    fail("environment variable " + std::string(name),
         "'" + std::string(text) + "' is not an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
  return value;
}

bool is_set(const std::function<const char*(const char*)>& get, const char* name) {
  const char* text = get(name);
  return text != nullptr && *text != '\0';
}

}  // namespace

LaunchEnv launch_env(const std::function<const char*(const char*)>& get_or_null) {
  std::function<const char*(const char*)> get = get_or_null;
  if (!get) get = [](const char* name) { return std::getenv(name); };
  LaunchEnv env;
  // Which launcher: torch's own names win (torchrun, or a user who sets them under mpirun/srun).
  const char *rank, *size, *local;
  if (is_set(get, "WORLD_SIZE") || is_set(get, "RANK")) {
    rank = "RANK", size = "WORLD_SIZE", local = "LOCAL_RANK";
    env.source = is_set(get, "TORCHELASTIC_RUN_ID") ? "torchrun" : "RANK/WORLD_SIZE";
  } else if (is_set(get, "OMPI_COMM_WORLD_SIZE")) {
    rank = "OMPI_COMM_WORLD_RANK", size = "OMPI_COMM_WORLD_SIZE", local = "OMPI_COMM_WORLD_LOCAL_RANK";
    env.source = "mpirun";
  } else if (is_set(get, "SLURM_NTASKS") && is_set(get, "SLURM_PROCID")) {
    rank = "SLURM_PROCID", size = "SLURM_NTASKS", local = "SLURM_LOCALID";
    env.source = "srun";
  } else {
    env.source = "single process";
    return env;
  }
  env.world_size = static_cast<int>(env_int(get, size, 1, 1, 1 << 20));
  env.rank = static_cast<int>(env_int(get, rank, -1, 0, env.world_size - 1));
  if (env.rank < 0) fail("environment variable " + std::string(rank), "not set although " + std::string(size) + " is");
  env.local_rank = static_cast<int>(env_int(get, local, env.rank, 0, env.world_size - 1));
  env.master_port = static_cast<int>(env_int(get, "MASTER_PORT", 29500, 1, 65535));
  if (is_set(get, "MASTER_ADDR")) {
    env.master_addr = get("MASTER_ADDR");
  } else {
    // One machine (every rank local) can default to the loopback; across machines nobody can guess rank 0's host.
    bool one_machine = env.local_rank == env.rank &&
                       (!is_set(get, "SLURM_NNODES") || std::string(get("SLURM_NNODES")) == "1") &&
                       (!is_set(get, "OMPI_COMM_WORLD_LOCAL_SIZE") ||
                        env_int(get, "OMPI_COMM_WORLD_LOCAL_SIZE", 0, 0, 1 << 20) == env.world_size);
    if (!one_machine && env.world_size > 1)
      fail("environment variable MASTER_ADDR",
           "not set: with " + std::to_string(env.world_size) + " processes on several machines (" + env.source +
               ") give rank 0's host name, e.g. MASTER_ADDR=$(hostname) on it");
    env.master_addr = "127.0.0.1";
  }
  const char* agent = get("TORCHELASTIC_USE_AGENT_STORE");
  env.agent_store = agent != nullptr && std::string(agent) == "True";
  const char* restart = get("TORCHELASTIC_RESTART_COUNT");
  env.store_prefix = "pidistill/" + std::string(restart != nullptr ? restart : "0") + "/";
  return env;
}

}  // namespace pidistill
