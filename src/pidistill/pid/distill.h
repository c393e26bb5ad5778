// A PID distillation run on the run harness (run/): the PidTrainer's steps, stats.jsonl lines (losses, FD),
// checkpoints, sample grids and the exported student, in a numbered run directory (or the resumed run's own).
#pragma once
#include "pidistill/nets/net_config.h"
#include "pidistill/pid/distill_options.h"
#include "pidistill/run/processes.h"

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace pidistill {

struct DistillResult {
  std::string run_dir;
  std::string student_path;     // the exported student (student-final.safetensors)
  std::string checkpoint_path;  // the last checkpoint written
  int64_t step = 0;             // optimiser steps done in total (resumed runs included)
  int64_t nonfinite_skipped = 0;
  double last_loss = 0;        // mean loss of the last log interval
  double seconds = 0;          // wall time of this invocation
  bool stopped_early = false;  // Ctrl-C or the --minutes budget ended it before --steps
};

struct DistillRun {
  DistillOptions options;
  std::optional<NetConfig> teacher_config;  // when the teacher file does not describe its architecture
  std::string resume;                       // a training-state-*.safetensors to continue from
  // On resume the checkpoint's options are used; these keys (as in training_options.json) were given on the
  // command line: schedule keys (steps, minutes, log_every, snap_every, grid_every, ...) replace the
  // checkpoint's, any other key must agree with it (Error otherwise).
  std::vector<std::string> given;
  bool show_progress = true;
  std::function<void(int64_t step)> after_step;  // tests: called after each completed step
  RunProcesses processes;  // this process's rank, how gradients are summed (one process by default)
};

DistillResult distill(const DistillRun& run);

// The options a run would use (resume applied), validated; what --dry-run prints.
DistillOptions resolve_options(const DistillRun& run);

}  // namespace pidistill
