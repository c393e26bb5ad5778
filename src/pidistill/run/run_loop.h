// The loop skeleton of both trainers: steps until the total (images or steps) or a stop (Ctrl-C / SIGTERM,
// the --minutes budget), the progress bar, and the run's periodic outputs (stats lines, checkpoints, sample
// grids) on their cadences, each once more when the run ends. The trainer supplies the step and the outputs.
#pragma once
#include "pidistill/run/processes.h"

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace pidistill {

// Why a run ended: the total reached, should_stop (Ctrl-C / SIGTERM) or the --minutes budget.
enum class RunEnd { Running, Done, Stopped, OutOfTime };

struct RunLoopOptions {
  std::string label = "train";  // progress bar label
  std::string unit = "step";    // loop unit: "step" or "img"
  int64_t total = 0;            // units of the whole run (resumed runs included); the run stops exactly there
  double minutes = 0;           // wall-clock budget of this invocation, counted from `started`; 0 = none
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
  bool show_progress = true;  // on the process that writes outputs
  // Whether to ask should_stop before the first step too (PID: a run asked to stop resumes and stops without
  // a step); after every step it is always asked (unless the total is reached).
  bool stop_before_first = false;
};

// When one output is due, in loop units (images or steps).
struct Cadence {
  int64_t every = 0;        // units between two firings during the run; 0 = none (only at the end)
  bool since_last = false;  // false: at multiples of `every`; true: `every` units after the previous firing,
                            // counted from where this invocation started (EDM's ticks)
  bool first = false;       // also after the first step of this invocation (EDM's tick 0 of a new run)
  bool at_end = true;       // once more when the run ends, unless it fired at that position already
  bool only_after_steps = false;  // that end firing only if steps were made since the previous firing (or
                                  // since the start): no stats line for an empty interval
};

struct RunEvent {
  int64_t position = 0;          // units done
  bool final = false;            // the firing at the end of the run
  RunEnd end = RunEnd::Running;  // why the run ended (final firings)
};

class RunLoop {
 public:
  explicit RunLoop(RunLoopOptions options, RunProcesses processes = {});

  // What the trainer supplies. step(): one optimiser step (a skipped non-finite one included) that advances
  // position(). progress_text(): e.g. "loss 0.0123" after a step.
  std::function<void()> step;
  std::function<int64_t()> position;
  std::function<std::string()> progress_text;
  std::function<bool()> should_stop;        // default: Ctrl-C / SIGTERM (util/stop_signal)
  std::function<void(int64_t)> after_step;  // tests: called after each step, before the stop check

  // Outputs fire in the order they were added; only on the process that writes outputs.
  void add(Cadence cadence, std::function<void(const RunEvent&)> action);

  // Runs to the total or a stop; the final firings are done when it returns.
  RunEnd run();
  double minutes_used() const;

 private:
  struct Output {
    Cadence cadence;
    std::function<void(const RunEvent&)> action;
    int64_t anchor = 0;  // position of the previous firing (or the start): since_last and only_after_steps
    int64_t last_fired = -1;  // position of the previous firing in this invocation
  };
  RunEnd check_stop();
  void fire(Output& out, const RunEvent& event);

  RunLoopOptions options_;
  RunProcesses processes_;
  std::vector<Output> outputs_;
};

}  // namespace pidistill
