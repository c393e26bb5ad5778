// A progress bar for long work: a bar with rate and ETA on a terminal, plain periodic lines otherwise.
#pragma once
#include <chrono>
#include <cstdint>
#include <string>

namespace pidistill {

class Progress {
 public:
  // total: units of work (images, steps); unit: their name for the rate ("img", "step").
  // enabled=false prints nothing (e.g. ranks other than 0). start_done: units done before this run (a resumed
  // run), so the rate counts only this run's work. The clock starts here: elapsed covers the first unit too.
  Progress(std::string label, int64_t total, std::string unit, bool enabled = true, int64_t start_done = 0);
  ~Progress();                                               // ends the line
  void update(int64_t done, const std::string& extra = "");  // extra: e.g. "loss 0.0123"
  void finish(const std::string& extra = "");
  // A wall-clock budget (e.g. what is left of distill --minutes) counted from construction: the percentage,
  // bar and ETA follow whichever of the total and the budget ends first. 0 = none.
  void set_time_limit(double seconds) { time_limit_ = seconds; }

 private:
  std::string label_, unit_;
  int64_t total_, start_done_, last_done_, printed_done_ = -1;
  std::string printed_extra_;
  double time_limit_ = 0;
  bool enabled_, tty_, finished_ = false;
  void print(int64_t done, const std::string& extra, std::chrono::steady_clock::time_point now);
  std::chrono::steady_clock::time_point start_, last_print_;
};

}  // namespace pidistill
