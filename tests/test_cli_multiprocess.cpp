// `train` and `distill` as two processes on 127.0.0.1 (RANK/WORLD_SIZE set by the test, a free port): the same
// weights as one process with the same global batch, a 2-process checkpoint resumed by one process, and a killed
// peer that makes the survivor fail in words within its --dist-timeout instead of hanging.
#include "test_cli_util.h"
#include "test_data_files.h"
#include "test_ports.h"

#include "pidistill/io/safetensors.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <iterator>
#include <filesystem>
#include <string>

namespace fs = std::filesystem;

namespace pidistill::test {
namespace {

const std::string kTeacher = std::string(PIDISTILL_SOURCE_DIR) + "/models/fashion-mnist-ddpmpp-teacher.safetensors";

// `pidistill ARGS` as ranks 0 and 1 of two processes at once (each killed after 120 s); rank 0's result, rank 1's
// output appended.
CliResult run_two(const std::string& args) {
  std::string env = "WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=" + std::to_string(free_port());
  std::string cli = "timeout -s KILL 120 '" + std::string(PIDISTILL_CLI) + "' " + args;
  std::string log1 = scratch_dir() + "/rank1.log";
  return run_command("(RANK=1 " + env + " " + cli + " > " + test::quoted(log1) + " 2>&1 &) ; RANK=0 " + env + " " + cli +
                     "; code=$?; sleep 1; cat " + test::quoted(log1) + "; exit $code");
}

std::string newest(const fs::path& dir, const std::string& prefix) {
  std::string found;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    if (e.path().filename().string().rfind(prefix, 0) == 0) found = std::max(found, e.path().string());
  return found;
}

// Largest absolute difference between same-named float tensors of two files (all must be present in both).
double max_difference(const std::string& a, const std::string& b) {
  TensorFile fa = read_safetensors(a), fb = read_safetensors(b);
  EXPECT_EQ(fa.tensors.size(), fb.tensors.size());
  double worst = 0;
  for (const auto& [name, t] : fa.tensors) {
    if (!t.is_floating_point() || t.numel() == 0) continue;
    worst = std::max(worst, (t.to(at::kDouble) - fb.get(name).to(at::kDouble)).abs().max().item<double>());
  }
  return worst;
}

std::string distill_args(const fs::path& out, int steps) {
  return "distill --teacher " + test::quoted(kTeacher) + " --loss l2 --N 8 --batch 4 --steps " + std::to_string(steps) +
         " --seed 1 --grid-every 0 --snap-every 2 --threads 1 --quiet --dist-timeout 60 --outdir " +
         test::quoted(out.string());
}

TEST(CliMultiprocess, DistillTwoProcessesEqualOne) {
  fs::path dir = fs::path(scratch_dir()) / "distill";
  CliResult one = run_cli(distill_args(dir / "one", 3));
  ASSERT_EQ(one.code, 0) << one.output;
  CliResult two = run_two(distill_args(dir / "two", 3));
  ASSERT_EQ(two.code, 0) << two.output;
  double diff = max_difference(newest(dir / "one", "student-final"), newest(dir / "two", "student-final"));
  EXPECT_LT(diff, 1e-6) << "student weights after 3 steps";
  std::string options = newest(dir / "two", "training_options");
  std::ifstream in(options);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("\"world_size\": 2"), std::string::npos) << text;
  EXPECT_NE(text.find("\"batch_per_rank\": 2"), std::string::npos) << text;
}

TEST(CliMultiprocess, TwoProcessCheckpointResumesOnOne) {
  fs::path dir = fs::path(scratch_dir()) / "resume";
  CliResult two = run_two(distill_args(dir / "two", 2));
  ASSERT_EQ(two.code, 0) << two.output;
  CliResult resumed = run_cli("distill --resume " + test::quoted(newest(dir / "two", "training-state-")) +
                              " --steps 4 --threads 1 --quiet");
  ASSERT_EQ(resumed.code, 0) << resumed.output;
  CliResult one = run_cli(distill_args(dir / "one", 4));
  ASSERT_EQ(one.code, 0) << one.output;
  EXPECT_LT(max_difference(newest(dir / "one", "student-final"), newest(dir / "two", "student-final")), 1e-6);
}

// EDM training with dropout 0: dropout masks are drawn inside the network's forward pass on each process's
// images, so only with dropout off are two processes the same computation as one.
TEST(CliMultiprocess, TrainTwoProcessesEqualOne) {
  fs::path dir = fs::path(scratch_dir()) / "train";
  fs::create_directories(dir / "data");
  write_raw(dir / "data/train-images-idx3-ubyte", idx_images(20, 6, 6));
  write_raw(dir / "data/train-labels-idx1-ubyte", idx_labels(std::vector<uint8_t>(20, 0)));
  auto args = [&](const std::string& out) {
    return "train --data " + test::quoted((dir / "data").string()) +
           " --pad 8 --cbase 8 --cres 1,2 --blocks 1 --attn '' --dropout 0 --batch 4 --batch-gpu 1 --kimg 0.012 "
           "--tick 0.004 --snap 100 --lr-rampup 0.00001 --ema 0.00001 --sample-steps 2 --sample-count 2 --seed 3 "
           "--threads 1 --dist-timeout 60 --outdir " + test::quoted((dir / out).string());
  };
  CliResult one = run_cli(args("one"));
  ASSERT_EQ(one.code, 0) << one.output;
  CliResult two = run_two(args("two"));
  ASSERT_EQ(two.code, 0) << two.output;
  std::string a = newest(dir / "one", "training-state-"), b = newest(dir / "two", "training-state-");
  ASSERT_FALSE(a.empty());
  ASSERT_FALSE(b.empty());
  EXPECT_LT(max_difference(a, b), 1e-6) << a << " vs " << b;
}

// Rank 1 is killed with SIGKILL a few seconds into a long run; rank 0 must say so and exit, within the timeout.
TEST(CliMultiprocess, KilledPeerIsAnErrorNotAHang) {
  fs::path dir = fs::path(scratch_dir()) / "killed";
  std::string env = "WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=" + std::to_string(free_port());
  std::string cli = "'" + std::string(PIDISTILL_CLI) + "' distill --teacher " + test::quoted(kTeacher) +
                    " --loss l2 --N 8 --batch 2 --steps 100000 --grid-every 0 --threads 1 --quiet --dist-timeout 20"
                    " --outdir " + test::quoted(dir.string());
  auto start = std::chrono::steady_clock::now();
  CliResult r = run_command("RANK=1 " + env + " " + cli + " > /dev/null 2>&1 & peer=$!; (sleep 8; kill -9 $peer) & "
                            "RANK=0 " + env + " timeout -s KILL 90 " + cli);
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_NE(r.output.find("error: rank 0 of 2"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("another process exited or stopped answering"), std::string::npos) << r.output;
  EXPECT_LT(seconds, 60.0) << r.output;
}

}  // namespace
}  // namespace pidistill::test
