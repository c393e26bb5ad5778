#include "pidistill/pid/distill.h"

#include "pidistill/pid/fd_monitor.h"
#include "pidistill/pid/grid_schedule.h"
#include "pidistill/pid/pid_trainer.h"
#include "pidistill/run/run_files.h"
#include "pidistill/run/run_loop.h"
#include "pidistill/util/checkpoint.h"
#include "pidistill/util/error.h"
#include "pidistill/util/stop_signal.h"

#include <nlohmann/json.hpp>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <set>

namespace pidistill {

using nlohmann::json;
namespace fs = std::filesystem;

namespace {

// One stats.jsonl line per log interval: mean loss and gradient norm of its finite steps, per-bin losses.
struct LogInterval {
  double loss = 0, grad = 0;
  int64_t count = 0;
  LossBinTally bins;  // per-noise-level losses of the finite steps since the last stats line
  std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now();
};

}  // namespace

DistillOptions resolve_options(const DistillRun& run) {
  DistillOptions o = run.options;
  if (!run.resume.empty()) {
    TensorFile ckpt = load_checkpoint(run.resume, PidTrainer::kind());
    json state = json::parse(checkpoint_state(ckpt));
    DistillOptions saved = distill_options_from_json(state.at("options").dump());
    json saved_j = json::parse(to_json(saved)), given_j = json::parse(to_json(o));
    static const std::set<std::string> schedule = {
        "steps",         "minutes", "log_every", "snap_every", "grid_every", "grid_seeds",  "export_ema",
        "max_nonfinite", "device",  "outdir",    "fd_every",   "fd_ref",     "fd_detector", "fd_images",
        "teacher"};  // a moved teacher: the trainer checks it is the same network
    for (const auto& key : run.given) {
      if (!given_j.contains(key)) continue;
      if (schedule.count(key))
        saved_j[key] = given_j[key];
      else if (saved_j[key] != given_j[key])
        fail(run.resume, "option '" + key + "' was " + saved_j[key].dump() +
                             " in the run being resumed, not " + given_j[key].dump() +
                             "; hint: only steps, minutes and the logging and --fd-* options may change");
    }
    o = distill_options_from_json(saved_j.dump());
    // A run started with a relative teacher path can be resumed from another folder: the checkpoint records
    // where that path pointed.
    const std::string teacher_abs = state.value("teacher_abs", std::string());
    if (!fs::exists(o.teacher) && !teacher_abs.empty() && fs::exists(teacher_abs)) o.teacher = teacher_abs;
  }
  if (o.teacher.empty()) fail("--teacher", "a teacher network file is required");
  validate(o);
  return o;
}

DistillResult distill(const DistillRun& run) {
  const auto t_start = std::chrono::steady_clock::now();
  const DistillOptions o = resolve_options(run);
  const RunProcesses processes = run.processes;
  install_stop_handler();
  PidTrainer trainer(o, run.teacher_config, processes);
  const NetConfig& tc = trainer.teacher_config();

  // Loaded before any training, so a wrong --fd-ref or --fd-detector fails at once, not after the first K
  // steps.
  std::unique_ptr<FdMonitor> fd_monitor;
  if (o.fd_every > 0) {
    FdMonitorOptions fd_options;
    fd_options.ref = o.fd_ref;
    fd_options.detector = o.fd_detector;
    fd_options.images = o.fd_images;
    fd_monitor = std::make_unique<FdMonitor>(fd_options);
  }
  double elapsed_before = 0;
  double fd_seconds = 0;  // wall time spent measuring FD, all invocations: train_minutes leaves it out
  RunFiles files;
  if (!run.resume.empty()) {
    const nlohmann::json state = nlohmann::json::parse(trainer.resume(run.resume));
    elapsed_before = state.value("elapsed_s", 0.0);
    fd_seconds = state.value("fd_s", 0.0);
    // The run continues in its own directory: only the newest checkpoint is kept, and the log lines of steps
    // after the resumed one are dropped (those steps are trained again).
    files = RunFiles::resume_in(run.resume, trainer.steps_done(), processes.writes_outputs());
  } else {
    char desc[128];
    std::snprintf(desc, sizeof desc, "pid-%s-N%lld-batch%lld", o.loss.c_str(), static_cast<long long>(o.N),
                  static_cast<long long>(o.batch));
    files = RunFiles::create(o.outdir, desc, to_json(o), processes, o.batch);
  }
  processes.broadcast(trainer.replicated_state());  // no-op for one process
  files.keep_newest_only = true;
  DistillResult result;
  result.run_dir = files.dir();
  auto elapsed_now = [&]() {
    return elapsed_before + std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
  };
  auto save_state = [&]() {
    const nlohmann::json extra = {{"elapsed_s", elapsed_now()}, {"fd_s", fd_seconds}};
    files.checkpoint(numbered_name("training-state-", trainer.steps_done(), ".safetensors"),
                     [&](const std::string& path) { trainer.save_state(path, extra.dump()); });
  };

  RunLoopOptions loop_options;
  loop_options.label = "distill";
  loop_options.total = o.steps;
  loop_options.minutes = o.minutes;
  loop_options.started = t_start;
  loop_options.show_progress = run.show_progress;
  loop_options.stop_before_first = true;
  RunLoop loop(loop_options, processes);
  LogInterval log;
  const PidStepReport* last = nullptr;
  loop.position = [&] { return trainer.steps_done(); };
  loop.step = [&] {
    last = &trainer.step(save_state);
    if (last->finite) {
      log.loss += last->loss, log.grad += last->grad_norm, ++log.count;
      log.bins.add(last->bins);
    }
  };
  loop.progress_text = [&] {
    char extra[96];
    std::snprintf(extra, sizeof extra, "loss %.5g", last ? last->loss : 0.0);
    return std::string(extra);
  };
  loop.after_step = run.after_step;

  // One stats.jsonl line for the steps since the last one (an early stop logs its partial interval too).
  Cadence log_cadence;
  log_cadence.every = o.log_every;
  log_cadence.only_after_steps = true;
  int64_t last_logged = trainer.steps_done();
  loop.add(log_cadence, [&](const RunEvent& e) {
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - log.start).count();
    nlohmann::json line = {
        {"step", e.position},
        {"loss", log.count ? log.loss / log.count : NAN},
        {"grad_norm", log.count ? log.grad / log.count : NAN},
        {"img_per_s", secs > 0 ? (e.position - last_logged) * o.batch / secs : 0.0},
        {"nonfinite_skipped", trainer.nonfinite().total},
        {"elapsed_s", elapsed_now()},
        {"N", last ? last->N : grid_size_at(e.position, o.N, o.N_start, o.N_refine_every)}};
    nlohmann::json bin_means = nlohmann::json::array(), bin_counts = nlohmann::json::array();
    for (int b = 0; b < kLossBins; ++b) {
      bin_means.push_back(log.bins.count[b] ? nlohmann::json(log.bins.mean(b)) : nlohmann::json(nullptr));
      bin_counts.push_back(log.bins.count[b]);
    }
    line["loss_bins"] = bin_means;
    line["bin_counts"] = bin_counts;
    if (const DynamicLossScale* scale = trainer.loss_scale()) {
      line["loss_scale"] = scale->scale;
      line["loss_scale_skipped"] = scale->skipped;
    }
    files.log(line.dump());
    if (log.count) result.last_loss = log.loss / log.count;
    log = LogInterval();
    last_logged = e.position;
  });

  // One stats.jsonl line with the FD of the exported weights now. minutes: wall time when the weights were
  // taken (what a user pays, earlier measurements included); train_minutes: the same without measurements.
  Cadence fd_cadence;
  fd_cadence.every = o.fd_every;
  loop.add(fd_cadence, [&](const RunEvent& e) {
    // At the end (also of a --minutes budget), but Ctrl-C wants out at once.
    if (!fd_monitor || (e.final && stop_requested())) return;
    const double at_start = elapsed_now();
    const auto t0 = std::chrono::steady_clock::now();
    const double fd = fd_monitor->measure(trainer.exported_student(), tc);
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    nlohmann::json line = {{"step", e.position},
                           {"fd", fd},
                           {"fd_images", o.fd_images},
                           {"fd_metric", fd_monitor->metric()},
                           {"kimg", static_cast<double>(e.position) * static_cast<double>(o.batch) / 1000.0},
                           {"minutes", at_start / 60},
                           {"train_minutes", (at_start - fd_seconds) / 60},
                           {"fd_s", secs}};
    files.log(line.dump());
    fd_seconds += secs;
  });

  Cadence snap_cadence;  // checkpoints (also at the end and on Ctrl-C)
  snap_cadence.every = o.snap_every;
  loop.add(snap_cadence, [&](const RunEvent&) { save_state(); });
  Cadence grid_cadence;
  grid_cadence.every = o.grid_every;
  grid_cadence.at_end = o.grid_every > 0;  // --grid-every 0: no grids (a benchmark or a run without images)
  loop.add(grid_cadence, [&](const RunEvent& e) {
    trainer.write_grid(files.path(numbered_name("grid-", e.position, ".png")));
  });
  Cadence export_cadence;  // the exported student, at the end only
  loop.add(export_cadence, [&](const RunEvent&) {
    result.student_path = files.path("student-final.safetensors");
    trainer.export_student(result.student_path);
  });

  const RunEnd end = loop.run();
  result.stopped_early = end == RunEnd::Stopped || end == RunEnd::OutOfTime;
  result.checkpoint_path = files.last_checkpoint();
  result.step = trainer.steps_done();
  result.nonfinite_skipped = trainer.nonfinite().total;
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
  return result;
}

}  // namespace pidistill
