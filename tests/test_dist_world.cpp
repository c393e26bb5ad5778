// The distributed layer: the launcher's environment, and two real processes on 127.0.0.1 doing each collective
// (the test binary spawns itself as rank 0 and rank 1), plus a peer that dies mid-run.
#include "test_ports.h"
#include "pidistill/dist/launch_env.h"
#include "pidistill/dist/world.h"
#include "pidistill/util/error.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <torch/torch.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>

namespace pidistill {
namespace {

LaunchEnv env_of(const std::map<std::string, std::string>& vars) {
  return launch_env([&](const char* name) -> const char* {
    auto it = vars.find(name);
    return it == vars.end() ? nullptr : it->second.c_str();
  });
}

std::string error_of(const std::map<std::string, std::string>& vars) {
  try {
    env_of(vars);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(LaunchEnv, NoLauncherIsOneProcess) {
  LaunchEnv env = env_of({});
  EXPECT_EQ(env.world_size, 1);
  EXPECT_EQ(env.rank, 0);
}

TEST(LaunchEnv, TorchrunNames) {
  LaunchEnv env = env_of({{"RANK", "3"}, {"WORLD_SIZE", "4"}, {"LOCAL_RANK", "1"}, {"MASTER_ADDR", "node7"},
                          {"MASTER_PORT", "1234"}, {"TORCHELASTIC_RUN_ID", "x"},
                          {"TORCHELASTIC_USE_AGENT_STORE", "True"}, {"TORCHELASTIC_RESTART_COUNT", "2"}});
  EXPECT_EQ(env.rank, 3);
  EXPECT_EQ(env.world_size, 4);
  EXPECT_EQ(env.local_rank, 1);
  EXPECT_EQ(env.master_addr, "node7");
  EXPECT_EQ(env.master_port, 1234);
  EXPECT_TRUE(env.agent_store);
  EXPECT_EQ(env.source, "torchrun");
  EXPECT_EQ(env.store_prefix, "pidistill/2/");
}

TEST(LaunchEnv, OpenMpiAndSlurmNames) {
  LaunchEnv mpi = env_of({{"OMPI_COMM_WORLD_RANK", "1"}, {"OMPI_COMM_WORLD_SIZE", "2"},
                          {"OMPI_COMM_WORLD_LOCAL_RANK", "1"}, {"OMPI_COMM_WORLD_LOCAL_SIZE", "2"}});
  EXPECT_EQ(mpi.rank, 1);
  EXPECT_EQ(mpi.world_size, 2);
  EXPECT_EQ(mpi.master_addr, "127.0.0.1");  // one machine: the loopback
  EXPECT_EQ(mpi.master_port, 29500);
  EXPECT_EQ(mpi.source, "mpirun");
  EXPECT_FALSE(mpi.agent_store);
  LaunchEnv slurm = env_of({{"SLURM_PROCID", "5"}, {"SLURM_NTASKS", "8"}, {"SLURM_LOCALID", "1"},
                            {"SLURM_NNODES", "2"}, {"MASTER_ADDR", "head"}});
  EXPECT_EQ(slurm.rank, 5);
  EXPECT_EQ(slurm.world_size, 8);
  EXPECT_EQ(slurm.local_rank, 1);
  EXPECT_EQ(slurm.source, "srun");
}

TEST(LaunchEnv, BadValuesNameTheVariable) {
  EXPECT_NE(error_of({{"RANK", "2"}, {"WORLD_SIZE", "2"}}).find("RANK"), std::string::npos);
  EXPECT_NE(error_of({{"RANK", "x"}, {"WORLD_SIZE", "2"}}).find("'x' is not an integer"), std::string::npos);
  EXPECT_NE(error_of({{"RANK", "0"}, {"WORLD_SIZE", "0"}}).find("WORLD_SIZE"), std::string::npos);
  EXPECT_NE(error_of({{"WORLD_SIZE", "2"}}).find("RANK"), std::string::npos);
  EXPECT_NE(error_of({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_PORT", "70000"}}).find("MASTER_PORT"),
            std::string::npos);
  // Across machines nobody can guess where rank 0 is.
  EXPECT_NE(error_of({{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "4"}, {"SLURM_LOCALID", "0"}, {"SLURM_NNODES", "2"}})
                .find("MASTER_ADDR"),
            std::string::npos);
}

// ---- two processes --------------------------------------------------------------------------------------------

constexpr auto kTimeout = std::chrono::seconds(20);

bool is_worker() { return std::getenv("PIDISTILL_TEST_DIST_WORKER") != nullptr; }

// Rank r contributes r + 1, so the sum over two ranks is 3 everywhere; small buckets force several of them.
TEST(DistWorker, Collectives) {
  if (!is_worker()) GTEST_SKIP() << "run by TwoProcesses.Collectives";
  World world = World::connect(launch_env(), "cpu", kTimeout);
  ASSERT_EQ(world.size(), 2);
  world.bucket_bytes = 64;
  const double r = world.rank();
  std::vector<at::Tensor> grads{torch::full({100}, r + 1), torch::full({3, 4}, 10 * (r + 1)),
                                torch::full({7}, r + 1, torch::kFloat64), torch::full({2}, r + 1)};
  world.all_reduce_sum(grads);
  EXPECT_TRUE(torch::equal(grads[0], torch::full({100}, 3.0)));
  EXPECT_TRUE(torch::equal(grads[1], torch::full({3, 4}, 30.0)));
  EXPECT_TRUE(torch::equal(grads[2], torch::full({7}, 3.0, torch::kFloat64)));
  EXPECT_TRUE(torch::equal(grads[3], torch::full({2}, 3.0)));
  std::vector<at::Tensor> weights{torch::randn({50}) + r, torch::full({2, 2}, r)};
  at::Tensor root_first = weights[0].clone();
  world.broadcast(weights);
  EXPECT_TRUE(torch::equal(weights[1], torch::zeros({2, 2})));
  std::vector<double> sums = world.sum({r, 1.0});
  EXPECT_EQ(sums, (std::vector<double>{1.0, 2.0}));
  // Every rank now holds rank 0's random tensor: sum it to check, rank 0 comparing against its own copy.
  std::vector<at::Tensor> check{weights[0].clone()};
  world.all_reduce_sum(check);
  if (world.rank() == 0) EXPECT_TRUE(torch::allclose(check[0], 2 * root_first));
  world.barrier();
}

// Rank 1 leaves without a word after meeting; rank 0's next collective must fail in words, not hang.
TEST(DistWorker, PeerDies) {
  if (!is_worker()) GTEST_SKIP() << "run by TwoProcesses.PeerDies";
  World world = World::connect(launch_env(), "cpu", std::chrono::seconds(10));
  world.barrier();
  if (world.rank() == 1) std::_Exit(0);
  std::vector<at::Tensor> grads{torch::ones({1000})};
  try {
    world.all_reduce_sum(grads);
    world.all_reduce_sum(grads);
    ADD_FAILURE() << "all-reduce with a dead peer returned";
  } catch (const Error& e) {
    std::string what = e.what();
    std::printf("error: %s\n", what.c_str());
    EXPECT_NE(what.find("rank 0 of 2"), std::string::npos) << what;
    EXPECT_NE(what.find("another process exited or stopped answering"), std::string::npos) << what;
    EXPECT_EQ(what.find('\n'), std::string::npos) << what;
  }
}

struct Ranks {
  int code[2] = {-1, -1};
  std::string output[2];
  double seconds = 0;
};

// Starts this test binary twice, as rank 0 and rank 1 of `test`, and waits for both (killed after 60 s).
Ranks run_two(const std::string& test) {
  char self[4096];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  self[n > 0 ? n : 0] = '\0';
  int port = test::free_port();
  auto start = std::chrono::steady_clock::now();
  FILE* pipes[2];
  for (int r = 0; r < 2; ++r) {
    std::string cmd = "PIDISTILL_TEST_DIST_WORKER=1 RANK=" + std::to_string(r) +
                      " WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=" + std::to_string(port) +
                      " timeout -s KILL 60 '" + self + "' --gtest_filter=DistWorker." + test + " 2>&1";
    pipes[r] = popen(cmd.c_str(), "r");
  }
  Ranks ranks;
  for (int r = 0; r < 2; ++r) {
    char buffer[4096];
    size_t got;
    while ((got = fread(buffer, 1, sizeof buffer, pipes[r])) > 0) ranks.output[r].append(buffer, got);
    int status = pclose(pipes[r]);
    ranks.code[r] = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }
  ranks.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return ranks;
}

TEST(TwoProcesses, Collectives) {
  if (is_worker()) GTEST_SKIP();
  Ranks ranks = run_two("Collectives");
  for (int r = 0; r < 2; ++r) {
    EXPECT_EQ(ranks.code[r], 0) << "rank " << r << ":\n" << ranks.output[r];
    EXPECT_NE(ranks.output[r].find("[  PASSED  ] 1 test"), std::string::npos) << ranks.output[r];
  }
}

TEST(TwoProcesses, DeadPeerIsAnErrorNotAHang) {
  if (is_worker()) GTEST_SKIP();
  Ranks ranks = run_two("PeerDies");
  EXPECT_EQ(ranks.code[0], 0) << ranks.output[0];
  EXPECT_NE(ranks.output[0].find("error: rank 0 of 2"), std::string::npos) << ranks.output[0];
  EXPECT_LT(ranks.seconds, 45.0);
}

}  // namespace
}  // namespace pidistill
