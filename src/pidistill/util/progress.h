// A progress bar for long work: a bar with rate and ETA on a terminal, plain periodic lines otherwise.
#pragma once
#include <chrono>
#include <cstdint>
#include <string>

namespace pidistill {

class Progress {
 public:
  // total: units of work (images, steps); unit: their name for the rate ("img", "step").
  // enabled=false prints nothing (e.g. ranks other than 0).
  Progress(std::string label, int64_t total, std::string unit, bool enabled = true);
  ~Progress();  // ends the line
  void update(int64_t done, const std::string& extra = "");  // extra: e.g. "loss 0.0123"
  void finish(const std::string& extra = "");

 private:
  std::string label_, unit_;
  int64_t total_, start_done_ = -1, last_done_ = 0;
  bool enabled_, tty_, finished_ = false;
  std::chrono::steady_clock::time_point start_, last_print_;
};

}  // namespace pidistill
