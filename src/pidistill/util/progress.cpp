// Progress: a redrawn bar on a terminal, one plain line every ~10 s when stderr is a file or pipe (logs stay
// short).
#include "pidistill/util/progress.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <utility>

namespace pidistill {

namespace {

constexpr double kTtyInterval = 0.1;   // seconds between redraws on a terminal
constexpr double kPlainInterval = 10;  // seconds between lines in a log file
constexpr int kBarWidth = 24;

double seconds(std::chrono::steady_clock::duration d) { return std::chrono::duration<double>(d).count(); }

// 75 -> "01:15", 3725 -> "1:02:05"; negative or absurd values (no rate yet) -> "?".
std::string format_duration(double s) {
  if (!std::isfinite(s) || s < 0 || s > 1e8) return "?";
  long t = std::lround(s);
  char buf[32];
  if (t >= 3600)
    std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", t / 3600, (t / 60) % 60, t % 60);
  else
    std::snprintf(buf, sizeof buf, "%02ld:%02ld", t / 60, t % 60);
  return buf;
}

}  // namespace

Progress::Progress(std::string label, int64_t total, std::string unit, bool enabled, int64_t start_done)
    : label_(std::move(label)),
      unit_(std::move(unit)),
      total_(total),
      start_done_(start_done),
      last_done_(start_done),
      enabled_(enabled),
      tty_(isatty(STDERR_FILENO) != 0),
      start_(std::chrono::steady_clock::now()),
      last_print_(start_) {}

Progress::~Progress() {
  if (!finished_) finish();
}

void Progress::update(int64_t done, const std::string& extra) {
  if (!enabled_ || finished_) return;
  auto now = std::chrono::steady_clock::now();
  last_done_ = done;
  bool at_end = total_ > 0 && done >= total_;
  if (seconds(now - last_print_) < (tty_ ? kTtyInterval : kPlainInterval) && !at_end) return;
  print(done, extra, now);
}

void Progress::print(int64_t done, const std::string& extra, std::chrono::steady_clock::time_point now) {
  last_print_ = now;
  printed_done_ = done;
  printed_extra_ = extra;
  const double elapsed = seconds(now - start_);
  const int64_t work = done - start_done_;
  // Why no rate before any work: "0 img/s" reads as "stuck", and an ETA from it would be infinite.
  const double rate = work > 0 && elapsed > 0 ? double(work) / elapsed : 0;
  std::string line = label_ + " ";
  if (total_ > 0 || time_limit_ > 0) {
    // The share of whichever limit ends the work first: a run stopped by its time budget long before its
    // step count reads 50% halfway through the budget, not 0%.
    double frac = total_ > 0 ? double(done) / double(total_) : 0;
    if (time_limit_ > 0) frac = std::max(frac, elapsed / time_limit_);
    frac = std::min(1.0, std::max(0.0, frac));
    if (tty_) {
      int filled = int(frac * kBarWidth);
      line += "|" + std::string(filled, '#') + std::string(kBarWidth - filled, '.') + "| ";
    }
    char pct[16];
    std::snprintf(pct, sizeof pct, "%3d%% ", int(frac * 100));
    line += pct;
  }
  line += std::to_string(done);
  if (total_ > 0) line += "/" + std::to_string(total_);
  if (rate > 0) {
    char rate_text[64];
    std::snprintf(rate_text, sizeof rate_text, " %.3g %s/s", rate, unit_.c_str());
    line += rate_text;
  }
  line += " elapsed " + format_duration(elapsed);
  double eta = total_ > 0 && rate > 0 ? double(total_ - done) / rate : -1;
  if (time_limit_ > 0 && (eta < 0 || time_limit_ - elapsed < eta)) eta = std::max(0.0, time_limit_ - elapsed);
  if (eta >= 0 && !(total_ > 0 && done >= total_)) line += " ETA " + format_duration(eta);
  if (!extra.empty()) line += " " + extra;
  if (tty_)
    std::fprintf(stderr, "\r%s\x1b[K", line.c_str());  // redraw in place, clearing leftovers of a longer line
  else
    std::fprintf(stderr, "%s\n", line.c_str());
  std::fflush(stderr);
}

void Progress::finish(const std::string& extra) {
  if (enabled_ && !finished_) {
    const bool worked = last_done_ != start_done_;
    // The final state once: not again when the last update already printed it (it did at the total).
    if ((worked || !extra.empty()) &&
        (printed_done_ != last_done_ || (!extra.empty() && extra != printed_extra_)))
      print(last_done_, extra, std::chrono::steady_clock::now());
    if (tty_ && printed_done_ >= 0) std::fputc('\n', stderr);
    std::fflush(stderr);
  }
  finished_ = true;
}

}  // namespace pidistill
