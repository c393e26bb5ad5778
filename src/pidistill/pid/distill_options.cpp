#include "pidistill/pid/distill_options.h"

#include "pidistill/optim/loss_scale.h"
#include "pidistill/pid/grid_schedule.h"
#include "pidistill/pid/index_sampling.h"
#include "pidistill/pid/pid_loss.h"
#include "pidistill/util/error.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>

namespace pidistill {

using nlohmann::json;

void validate(const DistillOptions& o) {
  if (o.N < 2)
    fail("--N", "the PID grid needs at least 2 points (got " + std::to_string(o.N) + "); the paper uses 250");
  pid_distance_from_string(o.loss);
  if (!(o.lr > 0 && std::isfinite(o.lr))) fail("--lr", "must be a finite number > 0");
  if (o.batch < 1) fail("--batch", "must be >= 1");
  if (o.precision != "fp32" && o.precision != "bf16" && o.precision != "bf16-teacher" && o.precision != "fp16")
    fail("--precision", "'" + o.precision + "' is not fp32, bf16, bf16-teacher or fp16");
  // LibTorch's CPU autocast has bf16 only (and its CPU convolutions no fp16 kernels).
  if (o.precision == "fp16" && o.device.rfind("cuda", 0) != 0)
    fail("--precision", "fp16 needs a CUDA device (--device cuda); on a CPU use bf16");
  if (o.loss_scale != "auto" && o.loss_scale != "none" && o.loss_scale != "dynamic")
    fail("--loss-scale", "'" + o.loss_scale + "' is not auto, none or dynamic");
  validate_loss_scale_init(o.loss_scale_init);
  if (o.precision != "fp32" && o.f64) fail("--precision", o.precision + " cannot be combined with --f64");
  if (o.batch_gpu < 0 || (o.batch_gpu > 0 && o.batch % o.batch_gpu != 0))
    fail("--batch-gpu", "must divide --batch (" + std::to_string(o.batch) + ")");
  if (o.workers < 1 || o.workers > 64) fail("--workers", "must be between 1 and 64");
  if (o.steps < 0) fail("--steps", "must be >= 0");
  if (o.minutes < 0) fail("--minutes", "must be >= 0");
  for (double r : o.ema)
    if (!(r >= 0 && r < 1)) fail("--ema", "rates must lie in [0, 1), got " + std::to_string(r));
  export_rate(o);
  if (o.log_every < 1) fail("--log-every", "must be >= 1");
  if (o.snap_every < 1) fail("--snap-every", "must be >= 1");
  if (o.grid_every < 0) fail("--grid-every", "must be >= 0");
  if (o.max_nonfinite < 1) fail("--max-nonfinite", "must be >= 1");
  if (o.huber_c < 0) fail("--huber-c", "must be >= 0");
  validate_grid_schedule(o.N, o.N_start, o.N_refine_every);
  index_sampling_from_string(o.index_sampling);
  if (o.fd_every < 0) fail("--fd-every", "must be >= 0");
  if (o.fd_every > 0 && o.fd_ref.empty())
    fail("--fd-ref", "required by --fd-every; hint: make one with pidistill ref --data DIR --out REF.npz");
  if (o.fd_every > 0 && o.fd_detector.empty())
    fail("--fd-detector", "required by --fd-every (inception-2015-12-05.pt or a pidistill classifier)");
  if (o.fd_images < 2) fail("--fd-images", "must be >= 2 (a covariance needs two images)");
}

bool uses_loss_scale(const DistillOptions& o) {
  return o.loss_scale == "dynamic" || (o.loss_scale == "auto" && o.precision == "fp16");
}

double export_rate(const DistillOptions& o, int64_t steps_done) {
  if (o.export_ema == "none") return 0;
  if (o.export_ema == "auto") {
    // Why the steps done and not --steps: an EMA starts as the initial weights and keeps rate^s of them after
    // s steps; a run stopped early by --minutes would otherwise export (nearly) the untrained student.
    const double steps = steps_done >= 0 ? double(steps_done) : double(o.steps);
    double best = 0;
    for (double r : o.ema)
      if (1 / (1 - r) <= steps / 10.0) best = std::max(best, r);
    return best;
  }
  double rate = 0;
  try {
    rate = std::stod(o.export_ema);
  } catch (const std::exception&) {
    fail("--export-ema", "'" + o.export_ema + "' is not auto, none or one of the --ema rates");
  }
  if (std::find(o.ema.begin(), o.ema.end(), rate) == o.ema.end())
    fail("--export-ema", "'" + o.export_ema + "' is not one of the --ema rates");
  return rate;
}

std::string to_json(const DistillOptions& o) {
  json j = {{"teacher", o.teacher},
            {"loss", o.loss},
            {"N", o.N},
            {"last_index_backward", o.last_index_backward},
            {"huber_c", o.huber_c},
            {"lr", o.lr},
            {"batch", o.batch},
            {"batch_gpu", o.batch_gpu},
            {"workers", o.workers},
            {"steps", o.steps},
            {"minutes", o.minutes},
            {"ema", o.ema},
            {"export_ema", o.export_ema},
            {"seed", o.seed},
            {"outdir", o.outdir},
            {"lpips_weights", o.lpips_weights},
            {"cond", o.cond},
            {"log_every", o.log_every},
            {"snap_every", o.snap_every},
            {"grid_every", o.grid_every},
            {"grid_seeds", o.grid_seeds},
            {"max_nonfinite", o.max_nonfinite},
            {"device", o.device},
            {"f64", o.f64},
            {"N_start", o.N_start},
            {"N_refine_every", o.N_refine_every},
            {"index_sampling", o.index_sampling},
            {"fd_every", o.fd_every},
            {"fd_ref", o.fd_ref},
            {"fd_detector", o.fd_detector},
            {"fd_images", o.fd_images},
            {"joint_student", o.joint_student},
            {"precision", o.precision},
            {"loss_scale", o.loss_scale},
            {"loss_scale_init", o.loss_scale_init}};
  return j.dump(2);
}

DistillOptions distill_options_from_json(const std::string& text) {
  DistillOptions o;
  json j;
  try {
    j = json::parse(text);
  } catch (const std::exception& e) {
    fail("distill options", std::string("not valid JSON (") + e.what() + ")");
  }
  if (!j.is_object()) fail("distill options", "expected a JSON object");
  auto get = [&](const char* key, auto& field) {
    if (!j.contains(key)) return;
    try {
      j.at(key).get_to(field);
    } catch (const std::exception&) {
      fail("distill options", std::string("bad value for '") + key + "'");
    }
  };
  const json defaults = json::parse(to_json(o));
  for (auto it = j.begin(); it != j.end(); ++it)
    if (!defaults.contains(it.key())) fail("distill options", "unknown key '" + it.key() + "'");
  get("teacher", o.teacher), get("loss", o.loss), get("N", o.N),
      get("last_index_backward", o.last_index_backward);
  get("huber_c", o.huber_c), get("lr", o.lr), get("batch", o.batch), get("batch_gpu", o.batch_gpu);
  get("workers", o.workers);
  get("steps", o.steps), get("minutes", o.minutes), get("ema", o.ema), get("export_ema", o.export_ema);
  get("seed", o.seed), get("outdir", o.outdir), get("lpips_weights", o.lpips_weights), get("cond", o.cond);
  get("log_every", o.log_every), get("snap_every", o.snap_every), get("grid_every", o.grid_every);
  get("grid_seeds", o.grid_seeds), get("max_nonfinite", o.max_nonfinite), get("device", o.device);
  get("f64", o.f64), get("N_start", o.N_start), get("N_refine_every", o.N_refine_every);
  get("index_sampling", o.index_sampling), get("fd_every", o.fd_every), get("fd_ref", o.fd_ref);
  get("fd_detector", o.fd_detector), get("fd_images", o.fd_images), get("joint_student", o.joint_student);
  get("precision", o.precision), get("loss_scale", o.loss_scale), get("loss_scale_init", o.loss_scale_init);
  return o;
}

}  // namespace pidistill
