// EdmTrainer::run: the tick outputs (stats lines, network snapshots, sample grids, training states) of an EDM
// training run, on the run harness.
#include "pidistill/edm/train.h"

#include "pidistill/edm/sampler.h"
#include "pidistill/nets/net_file.h"
#include "pidistill/run/run_loop.h"
#include "pidistill/util/image_io.h"
#include "pidistill/util/seeds.h"

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>

namespace pidistill {

using json = nlohmann::ordered_json;

std::string EdmTrainer::kimg_name(const std::string& stem, const std::string& ext) const {
  return files_.path(numbered_name(stem + "-", cur_nimg_ / 1000, "." + ext));
}

void EdmTrainer::write_sample_grid(const std::string& path) {
  if (options_.sample_count == 0) return;  // --sample-count 0: snapshots without sample grids
  std::vector<int64_t> seeds;
  for (int i = 0; i < options_.sample_count; ++i) seeds.push_back(i);
  auto latents =
      latents_for_seeds(seeds, options_.net.img_channels, options_.net.img_resolution);  // [n, C, H, W]
  at::Tensor labels;
  if (options_.net.label_dim > 0)
    labels = at::one_hot(at::arange(options_.sample_count, at::kLong) % options_.net.label_dim,
                         options_.net.label_dim)
                 .to(at::kDouble);  // [n, L]: class = seed mod label_dim
  Precond ema_precond(ema_, options_.precond);
  SamplerConfig sampler;
  sampler.num_steps = options_.sample_steps;
  auto x = heun_sample(ema_precond, latents, labels, sampler);  // [n, C, H, W] f64
  write_png_grid(path, x.to(at::kFloat));
}

void EdmTrainer::write_tick(bool final) {
  const auto& o = options_;
  auto now = std::chrono::steady_clock::now();
  double tick_seconds = std::chrono::duration<double>(now - tick_start_time_).count();
  json stats = {
      {"tick", cur_tick_},
      {"kimg", static_cast<double>(cur_nimg_) / 1000},
      {"loss", tick_steps_ ? tick_loss_sum_ / static_cast<double>(tick_steps_) : NAN},
      {"images_per_s", static_cast<double>(cur_nimg_ - tick_start_nimg_) / std::max(tick_seconds, 1e-9)},
      {"lr", tick_lr_},
      {"time_s", std::chrono::duration<double>(now - start_time_).count()},
      {"skipped_steps", tick_skipped_}};
  if (tick_steps_ == 0) stats["loss"] = nullptr;
  files_.log(stats.dump());
  // Snapshots every snap_ticks ticks (EDM also snapshots at tick 0) and at the end; no state at tick 0.
  const bool snapshot = final || (o.snap_ticks > 0 && cur_tick_ % o.snap_ticks == 0);
  const bool state_too = snapshot && (cur_tick_ != 0 || final);
  // Why before saving: the state records the next tick, so a resumed run numbers its ticks as an uninterrupted
  // one does (no tick logged twice).
  ++cur_tick_;
  tick_start_nimg_ = cur_nimg_;
  if (snapshot) {
    result_.last_network = kimg_name("network-snapshot", "safetensors");
    save_net(result_.last_network, *ema_, to_string(o.precond),
             {{"kimg", std::to_string(cur_nimg_ / 1000)},
              {"training_options", train_options_to_json(o, /*indent=*/-1)}});
    write_sample_grid(kimg_name("samples", "png"));
  }
  if (state_too) {
    files_.checkpoint(numbered_name("training-state-", cur_nimg_ / 1000, ".safetensors"),
                      [&](const std::string& path) { save_state(path); });
    result_.last_state = files_.last_checkpoint();
  }
  tick_start_time_ = now;
  tick_loss_sum_ = 0;
  tick_steps_ = tick_skipped_ = 0;
}

TrainResult EdmTrainer::run() {
  const auto& o = options_;
  std::string dataset_name = std::filesystem::path(o.data).filename().string();
  if (dataset_name.empty()) dataset_name = std::filesystem::path(o.data).parent_path().filename().string();
  std::string desc = (dataset_name.empty() ? "data" : dataset_name) + "-" + (o.cond ? "cond" : "uncond") +
                     "-" + o.arch + "-" + to_string(o.precond) + "-batch" + std::to_string(o.batch) + "-" +
                     o.dtype;
  // A resumed run continues in its checkpoint's directory; ticks logged after the checkpoint (before an
  // interruption) are dropped, since they are trained again. Only the newest training state is kept: each
  // holds the network, its EMA and Adam's moments.
  files_ = o.resume.empty() ? RunFiles::create(o.outdir, desc, train_options_to_json(o), processes_, o.batch)
                            : RunFiles::resume_in(o.resume, cur_tick_ - 1, processes_.writes_outputs(), "tick");
  files_.keep_newest_only = true;
  result_ = TrainResult();
  if (!o.resume.empty()) result_.last_state = o.resume;
  result_.run_dir = files_.dir();

  RunLoopOptions loop_options;
  loop_options.label = "train";
  loop_options.unit = "img";
  loop_options.total = total_nimg();
  loop_options.show_progress = o.progress;
  RunLoop loop(loop_options, processes_);
  start_time_ = tick_start_time_ = loop_options.started;
  tick_loss_sum_ = 0;
  tick_steps_ = tick_skipped_ = 0;
  tick_start_nimg_ = cur_nimg_;
  loop.position = [&] { return cur_nimg_; };
  loop.step = [&] {
    tick_lr_ = current_lr();
    if (train_step()) {
      tick_loss_sum_ += last_loss_;
      ++tick_steps_;
    } else {
      ++tick_skipped_;
    }
  };
  loop.progress_text = [&] {
    char extra[64];
    std::snprintf(extra, sizeof(extra), "loss %.4f", last_loss_);
    return std::string(extra);
  };
  loop.should_stop = [&] { return should_stop && should_stop(); };
  Cadence tick;  // a tick: stats line, and snapshots every snap_ticks ticks
  tick.every = std::max<int64_t>(1, std::llround(o.tick_kimg * 1000));
  tick.since_last = true;
  tick.first = cur_tick_ == 0;
  tick.only_after_steps = true;
  loop.add(tick, [&](const RunEvent& e) { write_tick(e.final); });
  const RunEnd end = loop.run();

  result_.cur_nimg = cur_nimg_;
  result_.steps = steps_;
  result_.skipped_steps = nonfinite_.total;
  result_.interrupted = end == RunEnd::Stopped;
  return result_;
}

}  // namespace pidistill
