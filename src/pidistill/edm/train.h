// EDM's training (training/training_loop.py) on the shared run harness (run/): Adam with a learning-rate
// ramp-up, an EMA by half-life, gradient accumulation, seeded and resumable bit for bit, atomic checkpoints.
#pragma once
#include "pidistill/edm/edm_loss.h"
#include "pidistill/edm/precond.h"
#include "pidistill/nets/net_config.h"
#include "pidistill/optim/adam.h"
#include "pidistill/run/nonfinite.h"
#include "pidistill/run/processes.h"
#include "pidistill/run/run_files.h"

#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace pidistill {

// The options of a run, under EDM train.py's names; resolved by the CLI and recorded in training_options.json.
struct TrainOptions {
  std::string data;            // --data: the dataset path (recorded; the images come in TrainData).
  bool cond = false;           // --cond: train class-conditional (needs labels).
  std::string arch = "ddpmpp";  // --arch: the preset the network config came from.
  NetConfig net;               // The resolved network config (preset + --cbase/--cres/--dropout...).
  PrecondType precond = PrecondType::EDM;  // --precond: preconditioning and loss (edm, vp, ve).
  double duration_mimg = 200;  // --duration: training duration in millions of images.
  int64_t batch = 512;         // --batch: total batch size per step.
  int64_t batch_gpu = 0;       // --batch-gpu: micro-batch (gradient accumulation); 0 = the whole batch at once.
  int64_t workers = 1;         // --workers: threads computing micro-batches at once, sharing --threads (speed).
  double lr = 10e-4;           // --lr: learning rate.
  double ema_mimg = 0.5;       // --ema: EMA half-life in millions of images.
  double ema_rampup = 0.05;    // --ema-rampup: EMA ramp-up coefficient (half-life <= cur_nimg * this); 0 = none.
  double lr_rampup_mimg = 10;  // --lr-rampup: learning-rate ramp-up duration in millions of images.
  bool xflip = false;          // --xflip: mirror each training image left-right with probability 1/2.
  int64_t seed = 0;            // --seed: seeds the network init, minibatches, noise and dropout.
  double tick_kimg = 50;       // --tick: progress and stats interval in thousands of images.
  int64_t snap_ticks = 50;     // --snap: ticks between network snapshots, training states and sample grids; 0 = only at the end.
  std::string outdir = "training-runs";  // --outdir: parent of the numbered run directory.
  std::string resume;          // --resume: a training-state-*.safetensors to continue from.
  int sample_steps = 18;       // Heun steps of the sample grids (35 network calls).
  int sample_count = 16;       // Images in each sample grid (seeds 0..count-1); 0 = no grids.
  int max_nonfinite_in_row = 100;  // Abort after this many consecutive steps with a non-finite loss.
  std::string dtype = "float32";   // Parameter dtype of the network ("float32" or "float64").
  bool progress = true;        // Show the progress bar / tick lines on stderr.
};

// The options as JSON under EDM's names: pretty (indent 2, training_options.json) or one line (indent -1).
std::string train_options_to_json(const TrainOptions& options, int indent = 2);

// The training images, held in memory as the datasets give them.
struct TrainData {
  at::Tensor images;      // uint8 [N, C, H, W]
  at::Tensor labels;      // int64 [N] or undefined
  int64_t label_dim = 0;  // classes, when labels are given
  std::string source;     // the dataset path, for errors
};

// What a finished (or interrupted) run leaves behind.
struct TrainResult {
  std::string run_dir;
  std::string last_state;    // the last training-state-*.safetensors
  std::string last_network;  // the last network-snapshot-*.safetensors (the EMA network)
  int64_t cur_nimg = 0;
  int64_t steps = 0, skipped_steps = 0;
  bool interrupted = false;
};

class EdmTrainer {
 public:
  // Builds the network (seeded), EMA and optimizer; with options.resume, restores everything from the checkpoint
  // (Error naming the file and the key when it is of another architecture). Creates no files.
  // `processes`: this process's rank and how gradients are summed (one process by default).
  EdmTrainer(TrainOptions options, TrainData data, RunProcesses processes = {});

  // One optimizer step over options.batch images (in micro-batches). Returns false when the loss was not finite:
  // the step is then skipped (no update of weights, moments or EMA) and counted; the images count as seen.
  // With several processes every one draws the whole batch's random numbers and trains on its slice.
  bool train_step();

  // Runs until the duration is reached (cur_nimg >= duration) or should_stop() says so, in a new numbered run
  // directory: training_options.json, stats.jsonl per tick, sample grids, network snapshots and training states
  // every options.snap_ticks ticks, at the end and when stopped.
  TrainResult run();

  // Writes the training state (model, EMA, Adam, RNG states, progress, options) atomically to PATH.
  void save_state(const std::string& path) const;

  std::function<bool()> should_stop;  // default: Ctrl-C / SIGTERM (util/stop_signal)

  const TrainOptions& options() const { return options_; }
  std::shared_ptr<UNet> net() const { return net_; }
  std::shared_ptr<UNet> ema() const { return ema_; }
  int64_t cur_nimg() const { return cur_nimg_; }
  int64_t total_nimg() const;
  int64_t skipped_steps() const { return nonfinite_.total; }
  double last_loss() const { return last_loss_; }
  double current_lr() const;  // the ramped learning rate of the next step

 private:
  void load_state(const std::string& path);
  void write_sample_grid(const std::string& path);
  void write_tick(bool final);  // a stats.jsonl line; snapshots on the --snap cadence and at the end
  std::string kimg_name(const std::string& stem, const std::string& ext) const;

  TrainOptions options_;
  TrainData data_;
  std::shared_ptr<UNet> net_, ema_;
  std::shared_ptr<Precond> precond_;
  LossConfig loss_;
  std::unique_ptr<Adam> optimizer_;
  at::Generator gen_;          // minibatch indices, x-flips, loss noise
  at::Generator dropout_gen_;  // the network's dropout masks
  RunProcesses processes_;
  int64_t cur_nimg_ = 0, cur_tick_ = 0, tick_start_nimg_ = 0, steps_ = 0;
  NonFiniteCount nonfinite_;
  double last_loss_ = 0;
  // The tick being logged: its loss sum over finite steps, steps, skipped steps, lr of its last step, start.
  double tick_loss_sum_ = 0, tick_lr_ = 0;
  int64_t tick_steps_ = 0, tick_skipped_ = 0;
  std::chrono::steady_clock::time_point start_time_, tick_start_time_;
  RunFiles files_;
  std::string data_sha256_;  // of the training images and labels, recorded in states and checked on resume
  TrainResult result_;
};

}  // namespace pidistill
