#include "pidistill/run/run_loop.h"

#include "pidistill/util/error.h"
#include "pidistill/util/progress.h"
#include "pidistill/util/stop_signal.h"

namespace pidistill {

RunLoop::RunLoop(RunLoopOptions options, RunProcesses processes)
    : options_(std::move(options)), processes_(processes) {
  should_stop = [] { return stop_requested(); };
}

void RunLoop::add(Cadence cadence, std::function<void(const RunEvent&)> action) {
  outputs_.push_back({cadence, std::move(action)});
}

double RunLoop::minutes_used() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - options_.started).count() / 60;
}

RunEnd RunLoop::check_stop() {
  // Why agreed over processes: a stop seen by one process alone would leave the others waiting in the next
  // all-reduce. The budget is checked only when no stop was asked, so Stopped wins over OutOfTime.
  const bool stop = processes_.any(should_stop && should_stop());
  if (stop) return RunEnd::Stopped;
  if (processes_.any(options_.minutes > 0 && minutes_used() >= options_.minutes)) return RunEnd::OutOfTime;
  return RunEnd::Running;
}

void RunLoop::fire(Output& out, const RunEvent& event) {
  out.action(event);
  out.anchor = out.last_fired = event.position;
}

RunEnd RunLoop::run() {
  if (!step || !position) fail("RunLoop", "no step or position given");
  const bool writes = processes_.writes_outputs();
  const int64_t start = position();
  Progress progress(options_.label, options_.total, options_.unit, options_.show_progress && writes,
                    /*start_done=*/start);
  if (options_.minutes > 0)
    progress.set_time_limit(options_.minutes * 60);  // ETA: whichever limit ends first
  for (auto& out : outputs_) out.anchor = start;

  RunEnd end = RunEnd::Running;
  if (start >= options_.total)
    end = RunEnd::Done;
  else if (options_.stop_before_first)
    end = check_stop();
  bool first = true;
  while (end == RunEnd::Running) {
    step();
    const int64_t pos = position();
    progress.update(pos, progress_text ? progress_text() : "");
    if (after_step) after_step(pos);
    end = pos >= options_.total ? RunEnd::Done : check_stop();
    // The step that ends the run leaves its outputs to the final firings below.
    if (end == RunEnd::Running && writes)
      for (auto& out : outputs_) {
        const Cadence& c = out.cadence;
        const bool due = (c.first && first) ||
                         (c.every > 0 && (c.since_last ? pos >= out.anchor + c.every : pos % c.every == 0));
        if (due) fire(out, {pos, false, end});
      }
    first = false;
  }
  const int64_t pos = position();
  if (writes)
    for (auto& out : outputs_) {
      const Cadence& c = out.cadence;
      if (!c.at_end || out.last_fired == pos || (c.only_after_steps && out.anchor == pos)) continue;
      fire(out, {pos, true, end});
    }
  progress.finish();
  return end;
}

}  // namespace pidistill
