// Everything a PID distillation run is configured by, with the paper's CIFAR-10 settings as defaults;
// resolved once, written to training_options.json and stored in every checkpoint.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace pidistill {

struct DistillOptions {
  std::string teacher;              // Teacher network file (EDM network, safetensors or torch.save).
  std::string loss = "lpips";       // Distance: lpips (paper), l2, l1 or huber.
  int64_t N = 250;                  // Grid points of the time discretisation.
  bool last_index_backward = true;  // Pair the last grid index with N-2 as the official code does.
  double huber_c = 0;               // Pseudo-Huber constant; 0 = 0.00054 sqrt(sample dimension) (iCT).
  double lr = 2e-4;                 // RAdam learning rate, constant (ImageNet 64: 1e-4).
  int64_t batch = 512;              // Images per optimiser step.
  int64_t batch_gpu = 0;            // Micro-batch per forward/backward (gradient accumulation); 0 = batch.
  int64_t workers = 1;              // Threads computing micro-batches at once, sharing --threads (speed).
  int64_t steps = 800000;           // Optimiser steps; training stops exactly here.
  double minutes = 0;               // Wall-clock budget of this invocation; 0 = none (stop at --steps).
  std::vector<double> ema = {0.999, 0.9999, 0.99995};  // EMA rates, each updated every step.
  std::string export_ema = "auto";       // Weights exported as the final student: auto, none (raw) or a rate.
  uint64_t seed = 0;                     // Seeds the student's draws (z, grid indices, labels).
  std::string outdir = "training-runs";  // Parent of the numbered run directory.
  std::string lpips_weights;             // VGG16 + LPIPS weights file, required by --loss lpips.
  bool cond = false;                     // Class-conditional teacher: labels drawn uniformly, shared.
  int64_t log_every = 100;               // Steps per stats.jsonl line.
  int64_t snap_every = 5000;             // Steps per checkpoint (also written at the end and on Ctrl-C).
  int64_t grid_every = 5000;             // Steps per one-call sample grid PNG (and one at the end); 0 = none.
  std::string grid_seeds = "0-63";       // Fixed seeds of the sample grids.
  int64_t max_nonfinite = 100;           // Abort after this many non-finite losses in a row.
  std::string device = "cpu";            // cpu or cuda[:i].
  bool f64 = false;                      // Train in float64 (tests, reference checks); default float32.

  // Beyond the paper (off by default; see docs/DISTILL.md).
  int64_t N_start = 0;                     // First grid size, refined N -> 2N-1 up to N; 0 = always N.
  int64_t N_refine_every = 0;              // Steps between refinements; required (>= 1) with N_start.
  std::string index_sampling = "uniform";  // Grid index draw: uniform (paper) or loss (toward high loss).
  int64_t fd_every = 0;                    // Steps per FD measurement of the exported student; 0 = none.
  std::string fd_ref;                      // Reference statistics (.npz from pidistill ref) for fd_every.
  std::string fd_detector;                 // Feature network file for fd_every (Inception or classifier).
  int64_t fd_images = 1000;                // One-call images per FD measurement (seeds 1000000...).
  bool joint_student = false;              // Both student calls of a step as one batch of 2B (speed).
  std::string precision = "fp32";          // fp32, bf16, bf16-teacher or fp16 (CUDA) autocast.
  std::string loss_scale = "auto";         // auto (dynamic for fp16, else none), none or dynamic.
  double loss_scale_init = 65536;          // First dynamic loss scale, a power of two (GradScaler's 2^16).
};

// Error naming the option for anything that cannot run (N < 2, batch_gpu not dividing batch, bad rates, ...).
void validate(const DistillOptions& options);

std::string to_json(const DistillOptions& options);                 // pretty-printed JSON object
DistillOptions distill_options_from_json(const std::string& text);  // unknown keys -> Error naming them

// Whether the run scales its loss dynamically (--loss-scale dynamic, or auto with fp16).
bool uses_loss_scale(const DistillOptions& options);

// The EMA rate `export_ema` selects after `steps_done` steps (-1: the planned --steps): 0 means the raw student.
// "auto" picks the largest rate whose averaging horizon 1/(1-rate) is at most steps_done/10, else the raw student
// (short runs), so that at most e^-10 of the initial weights remain in the exported average.
double export_rate(const DistillOptions& options, int64_t steps_done = -1);

}  // namespace pidistill
