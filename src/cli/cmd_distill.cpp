// `pidistill distill`: Physics Informed Distillation of an EDM teacher into a one-call student, with the
// paper's CIFAR-10 settings as defaults; seeded, resumable, stopping exactly at --steps.
#include "cli/cli_processes.h"
#include "cli/cli_util.h"
#include "cli/commands.h"
#include "pidistill/pid/distill.h"
#include "pidistill/util/error.h"
#include "pidistill/util/files.h"

#include <ATen/Context.h>

#include <cstdio>
#include <iostream>
#include <memory>
#include <utility>

namespace pidistill::cli {
namespace {

struct DistillCliOptions {
  DistillOptions o;
  std::string resume;
  bool dry_run = false;
  bool quiet = false;
  double dist_timeout = 300;
  NetOptions arch;
  CLI::App* cmd = nullptr;
};

// Command-line flag -> key in training_options.json, to tell the resume logic which options were given.
const std::pair<const char*, const char*> kFlagKeys[] = {{"--teacher", "teacher"},
                                                         {"--loss", "loss"},
                                                         {"--N", "N"},
                                                         {"--forward-last", "last_index_backward"},
                                                         {"--huber-c", "huber_c"},
                                                         {"--lr", "lr"},
                                                         {"--batch", "batch"},
                                                         {"--batch-gpu", "batch_gpu"},
                                                         {"--workers", "workers"},
                                                         {"--steps", "steps"},
                                                         {"--minutes", "minutes"},
                                                         {"--ema", "ema"},
                                                         {"--export-ema", "export_ema"},
                                                         {"--seed", "seed"},
                                                         {"--outdir", "outdir"},
                                                         {"--lpips-weights", "lpips_weights"},
                                                         {"--cond", "cond"},
                                                         {"--log-every", "log_every"},
                                                         {"--snap-every", "snap_every"},
                                                         {"--grid-every", "grid_every"},
                                                         {"--grid-seeds", "grid_seeds"},
                                                         {"--max-nonfinite", "max_nonfinite"},
                                                         {"--device", "device"},
                                                         {"--f64", "f64"},
                                                         {"--N-start", "N_start"},
                                                         {"--N-refine-every", "N_refine_every"},
                                                         {"--index-sampling", "index_sampling"},
                                                         {"--fd-every", "fd_every"},
                                                         {"--fd-ref", "fd_ref"},
                                                         {"--fd-detector", "fd_detector"},
                                                         {"--fd-images", "fd_images"},
                                                         {"--joint-student", "joint_student"},
                                                         {"--precision", "precision"},
                                                         {"--loss-scale", "loss_scale"},
                                                         {"--loss-scale-init", "loss_scale_init"}};

void run_distill_command(DistillCliOptions& c) {
  DistillRun run;
  run.options = c.o;
  run.resume = c.resume;
  // A GPU when there is one, as PyTorch users expect; a resumed run keeps the device it was started on.
  if (c.cmd->count("--device") == 0 && c.resume.empty() && at::hasCUDA()) run.options.device = "cuda";
  run.teacher_config = resolve_net_config(c.arch);
  run.show_progress = !c.quiet;
  for (const auto& [flag, key] : kFlagKeys)
    if (c.cmd->count(flag) > 0) run.given.push_back(key);
  if (c.resume.empty() && c.o.teacher.empty())
    fail("--teacher", "a teacher network file is required (or --resume)");
  if (!c.resume.empty() && c.o.teacher.empty()) run.options.teacher = "(from checkpoint)";

  const DistillOptions resolved = resolve_options(run);
  if (c.dry_run) {
    // Why: a dry run checks what a long run would fail on at its start (a README command runs this way).
    if (c.resume.empty()) require_regular_file(resolved.teacher);
    std::cout << to_json(resolved) << "\n";
    return;
  }
  auto processes = join_processes(run.options.device, c.dist_timeout);
  run.processes = processes->processes();
  DistillResult r = distill(run);
  if (!processes->is_main()) return;  // rank 0 reports for all
  std::printf("%s: step %lld, loss %.5g, %.1f s%s; student %s\n", r.run_dir.c_str(),
              static_cast<long long>(r.step), r.last_loss, r.seconds,
              r.stopped_early ? " (stopped early)" : "", r.student_path.c_str());
  if (r.stopped_early) std::printf("resume with: pidistill distill --resume %s\n", r.checkpoint_path.c_str());
  if (r.nonfinite_skipped)
    std::printf("%lld steps skipped for non-finite loss\n", static_cast<long long>(r.nonfinite_skipped));
}

}  // namespace

void add_distill_command(CLI::App& app) {
  auto c = std::make_shared<DistillCliOptions>();
  DistillOptions& o = c->o;
  CLI::App* cmd = app.add_subcommand("distill", "Distil an EDM teacher into a one-call PID student");
  c->cmd = cmd;
  cmd->add_option("--teacher", o.teacher, "Teacher network file (.safetensors or .pt)");
  cmd->add_option("--loss", o.loss, "Distance: lpips | l2 | l1 | huber")->capture_default_str();
  cmd->add_option("--N", o.N, "Grid points of the time discretisation")->capture_default_str();
  cmd->add_flag("--forward-last{false}", o.last_index_backward,
                "Draw indices from 0..N-2 only (default: pair N-1 with N-2 as the official code)");
  cmd->add_option("--huber-c", o.huber_c, "Pseudo-Huber c (default 0.00054 sqrt(dim), iCT)");
  cmd->add_option("--lr", o.lr, "RAdam learning rate")->check(kFinitePositive)->capture_default_str();
  cmd->add_option("--batch", o.batch, "Images per optimiser step")->capture_default_str();
  cmd->add_option("--batch-gpu", o.batch_gpu, "Micro-batch (gradient accumulation); 0 = --batch");
  cmd->add_option("--workers", o.workers,
                  "Threads that each compute a share of the micro-batches at once, splitting --threads among them "
                  "(faster than intra-op threads for small networks on a few cores)");
  cmd->add_option("--steps", o.steps, "Optimiser steps")->capture_default_str();
  cmd->add_option("--minutes", o.minutes, "Wall-clock budget of this invocation (0 = none)");
  cmd->add_option("--ema", o.ema, "EMA rates")->delimiter(',')->capture_default_str();
  cmd->add_option(
         "--export-ema", o.export_ema,
         "Exported weights: auto (largest EMA with 1/(1-rate) <= steps/10, else raw), none, or a rate")
      ->capture_default_str();
  cmd->add_option("--seed", o.seed, "Seed of z, grid indices and labels")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--outdir", o.outdir, "Parent of the numbered run directory")->capture_default_str();
  cmd->add_option("--resume", c->resume, "Continue from a training-state-*.safetensors checkpoint");
  cmd->add_option("--lpips-weights", o.lpips_weights, "VGG16 + LPIPS weights file (needed by --loss lpips)");
  cmd->add_flag("--cond", o.cond,
                "Class-conditional teacher: labels drawn uniformly, shared with the teacher");
  cmd->add_option("--log-every", o.log_every, "Steps per stats.jsonl line")->capture_default_str();
  cmd->add_option("--snap-every", o.snap_every, "Steps per checkpoint")->capture_default_str();
  cmd->add_option("--grid-every", o.grid_every, "Steps per sample grid PNG, and one at the end (0 = none)")
      ->capture_default_str();
  cmd->add_option("--grid-seeds", o.grid_seeds, "Seeds of the sample grids")->capture_default_str();
  cmd->add_option("--max-nonfinite", o.max_nonfinite, "Abort after this many non-finite losses in a row")
      ->capture_default_str();
  cmd->add_option("--device", o.device, "cpu or cuda[:i] (default: cuda when LibTorch sees a GPU, else cpu)");
  add_process_options(*cmd, c->dist_timeout);
  cmd->add_flag("--f64", o.f64, "Train in float64");
  // Beyond the paper: all off by default, so the defaults stay the paper's recipe.
  cmd->add_option("--N-start", o.N_start,
                  "Start on a grid of this many points, refined N -> 2N-1 every --N-refine-every steps up to "
                  "--N (0 = always --N)")
      ->capture_default_str();
  cmd->add_option("--N-refine-every", o.N_refine_every, "Steps between grid refinements (with --N-start)");
  cmd->add_option("--index-sampling", o.index_sampling,
                  "Grid index draw: uniform (paper) | loss (half uniform, half toward the noise levels with "
                  "the largest loss; importance-weighted)")
      ->capture_default_str();
  cmd->add_option("--fd-every", o.fd_every,
                  "Steps per FD measurement of the exported student, logged to stats.jsonl (0 = none)")
      ->capture_default_str();
  cmd->add_option("--fd-ref", o.fd_ref, "Reference statistics for --fd-every (.npz from pidistill ref)");
  cmd->add_option("--fd-detector", o.fd_detector,
                  "Feature network for --fd-every: inception-2015-12-05.pt or a pidistill classifier");
  cmd->add_option("--fd-images", o.fd_images, "One-call images per FD measurement (seeds 1000000...)")
      ->capture_default_str();
  cmd->add_option("--precision", o.precision,
                  "Mixed precision (autocast): fp32, bf16 (student and teacher), bf16-teacher or fp16 (CUDA)")
      ->capture_default_str();
  cmd->add_option("--loss-scale", o.loss_scale,
                  "Dynamic loss scaling: auto (on for fp16), none or dynamic (overflowed steps are skipped and "
                  "counted in stats.jsonl)")
      ->capture_default_str();
  cmd->add_option("--loss-scale-init", o.loss_scale_init, "First dynamic loss scale (a power of two)")
      ->capture_default_str();
  cmd->add_flag("--joint-student", o.joint_student,
                "Both student calls of a step as one batch of 2B (same gradients, fewer kernels)");
  cmd->add_flag("--dry-run", c->dry_run, "Print the resolved options and stop");
  cmd->add_flag("--quiet", c->quiet, "No progress bar");
  add_net_options(*cmd, c->arch);
  cmd->callback([c] { run_distill_command(*c); });
}

}  // namespace pidistill::cli
