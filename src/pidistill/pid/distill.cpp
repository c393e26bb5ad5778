#include "pidistill/pid/distill.h"

#include "pidistill/edm/precond.h"
#include "pidistill/metrics/lpips.h"
#include "pidistill/nets/net_file.h"
#include "pidistill/pid/ema.h"
#include "pidistill/pid/fd_monitor.h"
#include "pidistill/pid/grid_schedule.h"
#include "pidistill/pid/index_sampling.h"
#include "pidistill/pid/loss_bins.h"
#include "pidistill/pid/pid_loss.h"
#include "pidistill/pid/radam.h"
#include "pidistill/pid/student_file.h"
#include "pidistill/util/checkpoint.h"
#include "pidistill/util/error.h"
#include "pidistill/util/files.h"
#include "pidistill/util/image_io.h"
#include "pidistill/util/progress.h"
#include "pidistill/util/seeds.h"
#include "pidistill/util/sha256.h"
#include "pidistill/util/stop_signal.h"

#include <ATen/ATen.h>
#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>
#include <set>

namespace pidistill {

using nlohmann::json;
namespace fs = std::filesystem;

namespace {

const char* kKind = "pid_distill";

std::string step_name(const std::string& prefix, int64_t step, const std::string& ext) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%06lld", static_cast<long long>(step));
  return prefix + buf + ext;
}

// The student's parameters then buffers under their network names, for checkpoints.
NamedTensors net_tensors(const UNet& net, const std::string& prefix) {
  NamedTensors out;
  for (const auto& item : net.named_parameters())
    out.emplace_back(prefix + item.key(), item.value().detach());
  for (const auto& item : net.named_buffers()) out.emplace_back(prefix + item.key(), item.value().detach());
  return out;
}

void load_net_tensors(UNet& net, const TensorFile& file, const std::string& prefix) {
  torch::NoGradGuard no_grad;
  auto load = [&](auto items) {
    for (auto& item : items) {
      const std::string key = prefix + item.key();
      const at::Tensor& t = file.get(key);
      if (t.sizes() != item.value().sizes()) fail(file.path, "tensor '" + key + "' has the wrong shape");
      item.value().copy_(t);
    }
  };
  load(net.named_parameters());
  load(net.named_buffers());
}

at::Tensor one_hot(const at::Tensor& labels, int64_t label_dim, at::ScalarType dtype) {
  return at::one_hot(labels, label_dim).to(dtype);  // [B, label_dim]
}

}  // namespace

DistillOptions resolve_options(const DistillRun& run) {
  DistillOptions o = run.options;
  if (!run.resume.empty()) {
    TensorFile ckpt = load_checkpoint(run.resume, kKind);
    json state = json::parse(checkpoint_state(ckpt));
    DistillOptions saved = distill_options_from_json(state.at("options").dump());
    json saved_j = json::parse(to_json(saved)), given_j = json::parse(to_json(o));
    static const std::set<std::string> schedule = {
        "steps",         "minutes", "log_every", "snap_every", "grid_every", "grid_seeds",  "export_ema",
        "max_nonfinite", "device",  "outdir",    "fd_every",   "fd_ref",     "fd_detector", "fd_images"};
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
  const at::ScalarType dtype = o.f64 ? at::kDouble : at::kFloat;
  const at::Device device(o.device);
  install_stop_handler();

  // Teacher: frozen, eval mode, its own preconditioning.
  LoadedNet loaded = load_net(o.teacher, run.teacher_config);
  auto teacher_net = loaded.net;
  teacher_net->to(device, dtype);
  teacher_net->eval();
  for (auto& p : teacher_net->parameters()) p.set_requires_grad(false);
  auto teacher_precond = precond_for(loaded);  // the file's type and constants (an EDM pickle's)
  Precond& teacher = *teacher_precond;
  const NetConfig& tc = loaded.config;
  const int64_t label_dim = tc.label_dim;
  if (o.cond && label_dim == 0)
    fail("--cond", "the teacher " + o.teacher + " is unconditional (label_dim 0)");

  // Student: the teacher's architecture and weights, trained without dropout (as the paper does).
  NetConfig sc = tc;
  sc.dropout = 0;
  sc.label_dropout = 0;
  Student student(make_unet(sc));
  student.F->to(device, dtype);
  copy_weights(*student.F, *teacher_net);
  for (auto& p : student.F->parameters()) p.set_requires_grad(true);
  student.F->train();

  PidLossConfig loss_config;
  loss_config.grid.N = o.N;
  loss_config.grid.last_index_backward = o.last_index_backward;
  loss_config.distance = pid_distance_from_string(o.loss);
  loss_config.huber_c = o.huber_c;
  Lpips lpips;
  if (loss_config.distance == PidDistance::LPIPS) {
    if (tc.img_channels != 3)
      fail("--loss lpips", "LPIPS compares RGB images; the teacher makes " + std::to_string(tc.img_channels) +
                               "-channel images (hint: --loss l2, l1 or huber)");
    if (o.lpips_weights.empty()) fail("--lpips-weights", lpips_weights_hint());
    lpips = Lpips::load(o.lpips_weights).to(device, dtype);
    loss_config.lpips = &lpips;
  }

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
  IndexSampler sampler;
  sampler.mode = index_sampling_from_string(o.index_sampling);

  auto params = student.F->parameters();
  RAdamConfig radam_config;
  radam_config.lr = o.lr;
  RAdam radam(params, radam_config);
  Ema ema(params, o.ema);
  at::Generator gen = at::detail::createCPUGenerator(o.seed);
  int64_t step = 0, nonfinite_total = 0, nonfinite_row = 0;
  double elapsed_before = 0;
  double fd_seconds = 0;  // wall time spent measuring FD, all invocations: train_minutes leaves it out

  // What the run depends on, checked on resume: another file under the same name would silently change the
  // target.
  const std::string teacher_sha = sha256_file(o.teacher);
  DistillResult result;
  std::string run_dir;
  if (!run.resume.empty()) {
    TensorFile ckpt = load_checkpoint(run.resume, kKind);
    json state = json::parse(checkpoint_state(ckpt));
    load_net_tensors(*student.F, ckpt, "student.");
    radam.load_state(tensors_with_prefix(ckpt, "radam."));
    ema.load_state(tensors_with_prefix(ckpt, "ema."));
    set_generator_state(gen, ckpt.get("rng.state"), run.resume + " (rng.state)");
    step = state.at("step").get<int64_t>();
    nonfinite_total = state.value("nonfinite_total", int64_t{0});
    nonfinite_row = state.value("nonfinite_in_a_row", int64_t{0});
    elapsed_before = state.value("elapsed_s", 0.0);
    fd_seconds = state.value("fd_s", 0.0);
    if (sampler.mode == IndexSampling::Loss)
      sampler.load_state(ckpt.get("index_sampling.loss_ema"), run.resume + " (index_sampling.loss_ema)");
    const std::string saved_sha = state.value("teacher_sha256", std::string());
    if (!saved_sha.empty() && saved_sha != teacher_sha)
      fail(o.teacher, "the teacher file changed since the run started (sha256 " + saved_sha.substr(0, 12) +
                          "..., now " + teacher_sha.substr(0, 12) +
                          "...); hint: resume with the teacher it was "
                          "started with, or start a new run");
    run_dir = fs::path(run.resume).parent_path().string();
    if (run_dir.empty()) run_dir = ".";
    // The checkpoint resumed from is replaced by the next one (only the newest is kept), and the log lines of
    // steps after it, written before an interruption, are dropped: those steps are trained again.
    result.checkpoint_path = run.resume;
    drop_lines_after_step(run_dir + "/stats.jsonl", step);
    remove_stale_temporaries(run_dir);  // a killed write's ".NAME.tmp-XXXXXX"
  } else {
    char desc[128];
    std::snprintf(desc, sizeof desc, "pid-%s-N%lld-batch%lld", o.loss.c_str(), static_cast<long long>(o.N),
                  static_cast<long long>(o.batch));
    run_dir = make_run_dir(o.outdir, desc);
    write_file_atomic(run_dir + "/training_options.json", to_json(o) + "\n");
  }
  const std::string stats_path = run_dir + "/stats.jsonl";
  result.run_dir = run_dir;

  auto save_state = [&](double elapsed) {
    NamedTensors tensors = net_tensors(*student.F, "student.");
    add_with_prefix(tensors, "radam.", radam.state_tensors());
    add_with_prefix(tensors, "ema.", ema.state_tensors());
    tensors.emplace_back("rng.state", generator_state(gen));
    if (sampler.mode == IndexSampling::Loss) tensors.emplace_back("index_sampling.loss_ema", sampler.state());
    json state = {{"step", step},
                  {"nonfinite_total", nonfinite_total},
                  {"nonfinite_in_a_row", nonfinite_row},
                  {"elapsed_s", elapsed},
                  {"fd_s", fd_seconds},
                  {"teacher_sha256", teacher_sha},
                  {"teacher_abs", fs::absolute(o.teacher).lexically_normal().string()},
                  {"options", json::parse(to_json(o))}};
    const std::string path = run_dir + "/" + step_name("training-state-", step, ".safetensors");
    save_checkpoint(path, kKind, tensors, state.dump());
    // Keep only the newest checkpoint: each holds the student, every EMA and the optimiser moments.
    if (!result.checkpoint_path.empty() && result.checkpoint_path != path) fs::remove(result.checkpoint_path);
    result.checkpoint_path = path;
  };

  // One-call samples from fixed seeds, the same images at every snapshot.
  const std::vector<int64_t> grid_seeds = parse_seeds(o.grid_seeds);
  auto save_grid = [&]() {
    auto z =
        latents_for_seeds(grid_seeds, tc.img_channels, tc.img_resolution).to(device, dtype);  // [S, C, H, W]
    at::Tensor labels;
    if (label_dim > 0) {
      std::vector<int64_t> classes;
      for (int64_t s : grid_seeds) classes.push_back(s % label_dim);
      labels = one_hot(at::tensor(classes, at::kLong), label_dim, dtype).to(device);
    }
    student.F->eval();
    auto images = one_call_generate(student, z, labels);
    student.F->train();
    write_png_grid(run_dir + "/" + step_name("grid-", step, ".png"), images.cpu());
  };

  // The weights export_rate selects (an EMA copy or the raw student), in eval mode: what is exported and what
  // --fd-every measures.
  auto exported_student = [&]() {
    const double rate = export_rate(o, step);
    auto F = clone_net(*student.F);
    if (rate > 0) {
      const size_t r = std::find(o.ema.begin(), o.ema.end(), rate) - o.ema.begin();
      torch::NoGradGuard no_grad;
      auto copy_params = F->parameters();
      for (size_t i = 0; i < copy_params.size(); ++i) copy_params[i].copy_(ema.averages[r][i]);
    }
    F->eval();
    return Student(F, student.constants);
  };

  auto export_student = [&]() {
    const double rate = export_rate(o, step);
    std::map<std::string, std::string> meta = {{"teacher", portable_path(o.teacher)},
                                               {"teacher_sha256", teacher_sha},
                                               {"loss", o.loss},
                                               {"N", std::to_string(o.N)},
                                               {"step", std::to_string(step)}};
    meta["ema"] = rate > 0 ? json(rate).dump() : "none (raw student weights)";
    const std::string path = run_dir + "/student-final.safetensors";
    save_student(path, exported_student(), loaded.precond, meta);
    result.student_path = path;
  };

  const int64_t micro = o.batch_gpu > 0 ? o.batch_gpu : o.batch;
  std::vector<int64_t> z_shape = {o.batch, tc.img_channels, tc.img_resolution, tc.img_resolution};
  Progress progress("distill", o.steps, "step", run.show_progress, /*start_done=*/step);
  if (o.minutes > 0)
    progress.set_time_limit(o.minutes * 60);  // the ETA of whichever limit ends the run first
  double log_loss = 0, log_grad = 0;
  int64_t log_count = 0;
  LossBinTally log_bins;  // per-noise-level losses of the finite steps since the last stats line
  int64_t N_now = grid_size_at(step, o.N, o.N_start, o.N_refine_every);
  auto log_start = std::chrono::steady_clock::now();
  auto elapsed_now = [&]() {
    return elapsed_before + std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
  };
  auto minutes_used = [&]() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count() / 60;
  };

  int64_t last_logged = step;
  // One stats.jsonl line for the steps since the last one (an early stop logs its partial interval too).
  auto write_log = [&]() {
    if (step == last_logged) return;
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - log_start).count();
    json line = {{"step", step},
                 {"loss", log_count ? log_loss / log_count : NAN},
                 {"grad_norm", log_count ? log_grad / log_count : NAN},
                 {"img_per_s", secs > 0 ? (step - last_logged) * o.batch / secs : 0.0},
                 {"nonfinite_skipped", nonfinite_total},
                 {"elapsed_s", elapsed_now()},
                 {"N", N_now}};
    json bin_means = json::array(), bin_counts = json::array();
    for (int b = 0; b < kLossBins; ++b) {
      bin_means.push_back(log_bins.count[b] ? json(log_bins.mean(b)) : json(nullptr));
      bin_counts.push_back(log_bins.count[b]);
    }
    line["loss_bins"] = bin_means;
    line["bin_counts"] = bin_counts;
    append_line(stats_path, line.dump());
    if (log_count) result.last_loss = log_loss / log_count;
    log_loss = log_grad = 0, log_count = 0;
    log_bins.clear();
    last_logged = step;
    log_start = std::chrono::steady_clock::now();
  };

  int64_t last_fd = -1;
  // One stats.jsonl line with the FD of the exported weights now. minutes: wall time when the weights were
  // taken (what a user pays, earlier measurements included); train_minutes: the same without measurements.
  auto write_fd = [&]() {
    if (!fd_monitor || last_fd == step) return;
    const double at_start = elapsed_now();
    const auto t0 = std::chrono::steady_clock::now();
    const double fd = fd_monitor->measure(exported_student(), tc);
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    json line = {{"step", step},
                 {"fd", fd},
                 {"fd_images", o.fd_images},
                 {"fd_metric", fd_monitor->metric()},
                 {"kimg", static_cast<double>(step) * static_cast<double>(o.batch) / 1000.0},
                 {"minutes", at_start / 60},
                 {"train_minutes", (at_start - fd_seconds) / 60},
                 {"fd_s", secs}};
    append_line(stats_path, line.dump());
    fd_seconds += secs;
    last_fd = step;
  };

  while (step < o.steps) {
    if (stop_requested() || (o.minutes > 0 && minutes_used() >= o.minutes)) {
      result.stopped_early = true;
      break;
    }
    // Draw order fixed (z, indices, labels), whole batch at once, so micro-batching does not change the
    // draws.
    N_now = grid_size_at(step, o.N, o.N_start, o.N_refine_every);  // a function of the step: resume-safe
    loss_config.grid.N = N_now;
    auto z = at::randn(z_shape, gen, at::TensorOptions().dtype(dtype));  // z: [batch, C, H, W]
    IndexDraw draw = sampler.draw(o.batch, loss_config.grid, gen);
    const at::Tensor& indices = draw.indices;  // [batch]
    at::Tensor weights;                        // [batch] importance weights, undefined for uniform draws
    if (draw.weights.defined()) weights = draw.weights.to(device, dtype);
    at::Tensor labels;
    if (label_dim > 0)
      labels = one_hot(at::randint(0, label_dim, {o.batch}, gen, at::kLong), label_dim, dtype);
    z = z.to(device);
    if (labels.defined()) labels = labels.to(device);

    radam.zero_grad();
    double loss_value = 0;
    LossBinTally step_bins;
    for (int64_t b0 = 0; b0 < o.batch; b0 += micro) {
      auto out = pid_loss(student, teacher, z.narrow(0, b0, micro), indices.narrow(0, b0, micro), loss_config,
                          labels.defined() ? labels.narrow(0, b0, micro) : labels);
      // Why unweighted: the bins report (and the sampler tracks) each noise level's own loss.
      step_bins.add(out.indices, out.loss.detach(), N_now);
      // Why the weights: with p(i) not uniform, (1/n)/p(i) keeps the expected loss that of uniform draws.
      auto per_sample = weights.defined() ? out.loss * weights.narrow(0, b0, micro) : out.loss;  // [micro]
      auto loss =
          per_sample.sum() / static_cast<double>(o.batch);  // batch mean, accumulated over micro-batches
      loss.backward();
      loss_value += loss.item<double>();
    }
    double grad_sq = 0;
    for (const auto& p : params)
      if (p.grad().defined()) grad_sq += p.grad().to(at::kDouble).square().sum().item<double>();
    const double grad_norm = std::sqrt(grad_sq);
    ++step;
    if (!std::isfinite(loss_value) || !std::isfinite(grad_norm)) {
      // Skipped and counted; the step still counts so a run stops at --steps.
      ++nonfinite_total;
      if (++nonfinite_row >= o.max_nonfinite) {
        save_state(elapsed_now());
        fail("distill", std::to_string(nonfinite_row) + " non-finite losses in a row at step " +
                            std::to_string(step) + "; hint: lower --lr or check the teacher");
      }
    } else {
      nonfinite_row = 0;
      radam.step();
      ema.update(params);
      sampler.update(step_bins);
      log_loss += loss_value, log_grad += grad_norm, ++log_count;
      log_bins.add(step_bins);
    }

    char extra[96];
    std::snprintf(extra, sizeof extra, "loss %.5g", loss_value);
    progress.update(step, extra);
    if (step % o.log_every == 0 || step == o.steps) write_log();
    if (step % o.snap_every == 0 && step < o.steps) save_state(elapsed_now());
    if (o.grid_every > 0 && step % o.grid_every == 0 && step < o.steps) save_grid();
    if (o.fd_every > 0 && step % o.fd_every == 0 && step < o.steps) write_fd();
    if (run.after_step) run.after_step(step);
  }
  write_log();
  progress.finish();
  if (!stop_requested()) write_fd();  // at the end (also of a --minutes budget); Ctrl-C wants out at once
  save_state(elapsed_now());
  save_grid();
  export_student();
  result.step = step;
  result.nonfinite_skipped = nonfinite_total;
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
  return result;
}

}  // namespace pidistill
