// The run harness both trainers share: when outputs fire (multiples, since the last, first step, the end),
// stop conditions (a stop request before or after a step, the --minutes budget, agreed over processes),
// rank-0-only outputs, batch slices per process, and the run directory's files.
#include "pidistill/run/batch_slice.h"
#include "pidistill/run/nonfinite.h"
#include "pidistill/run/run_files.h"
#include "pidistill/run/run_loop.h"
#include "pidistill/util/error.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

using namespace pidistill;
namespace fs = std::filesystem;

namespace {

// A loop over `total` steps of `unit` each, starting at `start`, recording every firing as "name@pos" (with
// a trailing '!' for final ones).
struct Recorder {
  int64_t pos = 0, unit = 1;
  std::vector<std::string> fired;
  RunLoop make(int64_t total, RunLoopOptions options = {}, RunProcesses processes = {}) {
    options.total = total;
    options.show_progress = false;
    RunLoop loop(options, processes);
    loop.step = [this] { pos += unit; };
    loop.position = [this] { return pos; };
    loop.should_stop = [] { return false; };
    return loop;
  }
  void add(RunLoop& loop, const std::string& name, Cadence c) {
    loop.add(c, [this, name](const RunEvent& e) {
      fired.push_back(name + "@" + std::to_string(e.position) + (e.final ? "!" : ""));
    });
  }
};

Cadence every(int64_t n) {
  Cadence c;
  c.every = n;
  return c;
}

std::vector<std::string> v(std::initializer_list<std::string> items) { return items; }

}  // namespace

TEST(RunLoop, MultiplesThenOnceAtTheEnd) {
  Recorder r;
  RunLoop loop = r.make(5);
  r.add(loop, "log", every(2));
  Cadence end_only;
  r.add(loop, "export", end_only);
  EXPECT_EQ(loop.run(), RunEnd::Done);
  EXPECT_EQ(r.fired, v({"log@2", "log@4", "log@5!", "export@5!"}));

  Recorder resumed;  // a resumed run keeps the multiples of the whole run
  resumed.pos = 3;
  RunLoop again = resumed.make(6);
  resumed.add(again, "log", every(2));
  again.run();
  EXPECT_EQ(resumed.fired, v({"log@4", "log@6!"}));
}

TEST(RunLoop, SinceLastAndFirstStepLikeEdmTicks) {
  Recorder r;
  r.pos = 16, r.unit = 4;  // images, 4 per step, resumed at 16
  RunLoop loop = r.make(40);
  Cadence tick;
  tick.every = 10, tick.since_last = true, tick.first = true, tick.only_after_steps = true;
  r.add(loop, "tick", tick);
  loop.run();
  EXPECT_EQ(r.fired, v({"tick@20", "tick@32", "tick@40!"}));  // 10 images after the previous tick
}

TEST(RunLoop, NothingLeftToDo) {
  Recorder r;
  r.pos = 5;
  RunLoop loop = r.make(5);
  Cadence log = every(1);
  log.only_after_steps = true;
  r.add(loop, "log", log);
  r.add(loop, "checkpoint", every(1));
  EXPECT_EQ(loop.run(), RunEnd::Done);
  EXPECT_EQ(r.fired, v({"checkpoint@5!"}));  // no stats line for an empty interval
}

TEST(RunLoop, StopRequests) {
  // Asked after every step: stops after the step that saw it, its outputs left to the final firing.
  Recorder r;
  RunLoop loop = r.make(10);
  int calls = 0;
  loop.should_stop = [&] { return ++calls == 2; };
  r.add(loop, "log", every(1));
  EXPECT_EQ(loop.run(), RunEnd::Stopped);
  EXPECT_EQ(r.pos, 2);
  EXPECT_EQ(r.fired, v({"log@1", "log@2!"}));

  // Asked before the first step too: a run that is already asked to stop makes no step.
  Recorder before;
  RunLoopOptions options;
  options.stop_before_first = true;
  RunLoop first = before.make(10, options);
  first.should_stop = [] { return true; };
  before.add(first, "checkpoint", every(5));
  EXPECT_EQ(first.run(), RunEnd::Stopped);
  EXPECT_EQ(before.pos, 0);
  EXPECT_EQ(before.fired, v({"checkpoint@0!"}));

  // The --minutes budget.
  Recorder timed;
  RunLoopOptions budget;
  budget.minutes = 1e-9;
  RunLoop out_of_time = timed.make(1000, budget);
  EXPECT_EQ(out_of_time.run(), RunEnd::OutOfTime);
  EXPECT_EQ(timed.pos, 1);
}

namespace {
// Two processes as seen from one of them: the other one asks to stop at the third step.
struct FakeSync : ProcessSync {
  int any_calls = 0;
  void sum_gradients(const std::vector<at::Tensor>&) override {}
  void broadcast(const std::vector<at::Tensor>&) override {}
  void sum(std::vector<double>& values) override {
    for (double& x : values) x *= 2;
  }
  // Two calls per step (the stop request, then the budget): the 5th is the third step's stop request.
  bool any(bool flag) override { return flag || ++any_calls == 5; }
};
}  // namespace

TEST(RunLoop, OnlyRankZeroWritesAndStopsAreAgreed) {
  FakeSync sync;
  RunProcesses rank1{1, 2, &sync};
  EXPECT_FALSE(rank1.writes_outputs());
  Recorder r;
  RunLoop loop = r.make(10, {}, rank1);
  r.add(loop, "log", every(1));
  EXPECT_EQ(loop.run(), RunEnd::Stopped);  // the peer's request
  EXPECT_EQ(r.pos, 3);
  EXPECT_TRUE(r.fired.empty());
  std::vector<double> stats = {1.5};
  rank1.sync_step({}, stats);
  EXPECT_EQ(stats[0], 3.0);
  RunProcesses one;
  one.sync_step({}, stats);  // one process: nothing to sum
  EXPECT_EQ(stats[0], 3.0);
}

TEST(RunLoop, BatchSlicesAndMicroBatches) {
  BatchSlice whole = rank_slice(8, 0, 1);
  EXPECT_EQ(whole.begin, 0);
  EXPECT_EQ(whole.end, 8);
  BatchSlice second = rank_slice(8, 1, 2);
  EXPECT_EQ(second.begin, 4);
  EXPECT_EQ(second.end, 8);
  EXPECT_THROW(rank_slice(8, 0, 3), Error);
  auto micro = micro_batches(second, 2);
  ASSERT_EQ(micro.size(), 2u);
  EXPECT_EQ(micro[1].begin, 6);
  EXPECT_TRUE(second.contains(micro[1]));
  EXPECT_FALSE(second.contains(BatchSlice{2, 4}));
  EXPECT_EQ(micro_batches(second, 0).size(), 1u);
  try {
    micro_batches(second, 3);
    FAIL() << "expected an Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--batch-gpu"), std::string::npos) << e.what();
  }
  NonFiniteCount count;
  EXPECT_FALSE(count.record(false, 2));
  EXPECT_FALSE(count.record(true, 2));
  EXPECT_FALSE(count.record(false, 2));
  EXPECT_TRUE(count.record(false, 2));
  EXPECT_EQ(count.total, 3);
}

TEST(RunLoop, RunFilesKeepTheNewestCheckpointAndDropLaterLines) {
  const fs::path out = fs::temp_directory_path() / ("pidistill_test_run_loop_" + std::to_string(getpid()));
  fs::remove_all(out);
  RunFiles files = RunFiles::create(out.string(), "test", R"({"batch": 8})", RunProcesses{}, 8);
  std::ifstream options(files.path("training_options.json"));
  const std::string text((std::istreambuf_iterator<char>(options)), std::istreambuf_iterator<char>());
  EXPECT_EQ(text, "{\n  \"batch\": 8,\n  \"world_size\": 1,\n  \"batch_per_rank\": 8\n}\n");
  files.keep_newest_only = true;
  auto write = [](const std::string& path) { std::ofstream(path) << "x"; };
  files.checkpoint(numbered_name("state-", 1, ".bin"), write);
  files.checkpoint(numbered_name("state-", 2, ".bin"), write);
  EXPECT_FALSE(fs::exists(files.path("state-000001.bin")));
  EXPECT_EQ(files.last_checkpoint(), files.path("state-000002.bin"));
  for (int step = 1; step <= 3; ++step) files.log("{\"step\": " + std::to_string(step) + "}");

  RunFiles resumed = RunFiles::resume_in(files.path("state-000002.bin"), 2, true);
  EXPECT_EQ(resumed.dir(), files.dir());
  std::ifstream in(files.path("stats.jsonl"));
  int lines = 0;
  for (std::string line; std::getline(in, line);) ++lines;
  EXPECT_EQ(lines, 2);  // step 3 is trained again

  RunFiles silent = RunFiles::create(out.string(), "rank1", "{}", RunProcesses{1, 2, nullptr}, 8);
  EXPECT_TRUE(silent.dir().empty());
  silent.log("{}");  // no-op
  EXPECT_EQ(std::distance(fs::directory_iterator(out), fs::directory_iterator()), 1);
  fs::remove_all(out);
}
