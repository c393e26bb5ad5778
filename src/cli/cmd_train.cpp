// `pidistill train`: EDM's train.py for one process: resolve the options, record them, run the training loop.
#include "cli/cli_processes.h"
#include "cli/cli_util.h"
#include "cli/commands.h"
#include "pidistill/data/dataset.h"
#include "pidistill/edm/train.h"
#include "pidistill/util/error.h"
#include "pidistill/util/stop_signal.h"

#include <cmath>
#include <iostream>
#include <memory>
#include <sstream>

namespace pidistill::cli {
namespace {

// Command-line values before resolution; unset overrides keep the preset's value.
struct TrainArgs {
  TrainOptions train;
  std::string arch = "ddpmpp";  // --arch
  std::string precond = "edm";  // --precond
  double duration = 200;        // --duration (Mimg)
  double kimg = 0;              // --kimg: duration in kimg instead (for short runs)
  ArchOverrides sizes;          // --cbase, --cres, --blocks, --attn: the preset's unless given
  double dropout = 0.13;  // --dropout: EDM's default
  double augment = 0;     // --augment: EDM's augment pipe probability (not supported)
  int pad = 0;            // --pad: zero-pad images to this size (Fashion-MNIST 28 -> 32)
  bool f64 = false;       // --f64: train in float64
  bool dry_run = false;   // --dry-run
  double dist_timeout = 300;  // --dist-timeout: seconds to wait for the other processes
};

void run_train(TrainArgs a, const CLI::App& cmd) {
  TrainOptions& o = a.train;
  if (a.augment > 0)
    fail("--augment", "EDM's augmentation pipe is not implemented; hint: train with --augment 0 and --xflip");
  if (cmd.count("--kimg") && cmd.count("--duration")) fail("--kimg", "give --duration or --kimg, not both");
  o.duration_mimg = cmd.count("--kimg") ? a.kimg / 1000 : a.duration;
  o.arch = a.arch;
  o.precond = precond_from_string(a.precond);
  o.dtype = a.f64 ? "float64" : "float32";

  DatasetOptions data_options;
  data_options.pad_to = a.pad;
  data_options.use_labels = o.cond;
  Dataset dataset = open_dataset(o.data, data_options);
  if (o.cond && !dataset.has_labels()) fail(o.data, "--cond needs labels but the dataset has none");

  try {
    o.net = net_config_preset(a.arch, static_cast<int>(dataset.resolution()),
                              static_cast<int>(dataset.channels()));
    apply_arch_overrides(a.sizes, cmd, o.net);
    o.net.dropout = a.dropout;
    o.net.label_dim = o.cond ? static_cast<int>(dataset.label_dim()) : 0;
    validate(o.net);
  } catch (const Error& e) {
    // Why: the network's shape follows the images (e.g. a 6x6 dataset for a 4-level network); the message
    // must say which dataset and what its images are.
    fail(o.data, "images of " + std::to_string(dataset.channels()) + "x" +
                     std::to_string(dataset.resolution()) + "x" + std::to_string(dataset.resolution()) +
                     " do not fit --arch " + a.arch + ": " + e.what() +
                     " (hint: --pad, or --cres with fewer levels)");
  }

  TrainData data{dataset.raw_images(), o.cond ? dataset.raw_labels() : at::Tensor(), dataset.label_dim(),
                 o.data};
  int64_t steps = static_cast<int64_t>(std::ceil(o.duration_mimg * 1e6 / static_cast<double>(o.batch)));
  if (launch_env().rank == 0)  // other ranks of a multi-process run stay quiet
    std::cout << "Training options:\n"
            << train_options_to_json(o) << "\n"
            << "Dataset: " << dataset.size() << " images " << dataset.channels() << "x"
            << dataset.resolution() << "x" << dataset.resolution()
            << (o.cond ? ", " + std::to_string(dataset.label_dim()) + " classes" : "") << "; " << steps
            << " steps of " << o.batch << " images\n";
  if (a.dry_run) {
    std::cout << "Dry run; exiting.\n";
    return;
  }
  install_stop_handler();
  std::string device = "cpu";  // train runs on the CPU
  auto processes = join_processes(device, a.dist_timeout);
  EdmTrainer trainer(o, std::move(data), processes->processes());
  TrainResult result = trainer.run();
  if (!processes->is_main()) return;  // rank 0 reports for all
  std::cout << (result.interrupted ? "Interrupted" : "Done") << " at " << result.cur_nimg / 1000.0
            << " kimg (" << result.steps << " steps, " << result.skipped_steps << " skipped) in "
            << result.run_dir << "\n"
            << "  network: " << result.last_network << "\n"
            << "  training state: " << result.last_state << "\n";
}

}  // namespace

void add_train_command(CLI::App& app) {
  auto a = std::make_shared<TrainArgs>();
  CLI::App* cmd = app.add_subcommand("train", "Train an EDM diffusion model (EDM's train.py, one process)");
  TrainOptions& o = a->train;
  cmd->add_option("--data", o.data, "Dataset: IDX folder/file, CIFAR-10 batches, image folder or EDM zip")
      ->required();
  cmd->add_flag("--cond", o.cond, "Train a class-conditional model");
  cmd->add_option("--arch", a->arch, "Network architecture: ddpmpp | ncsnpp | adm")->capture_default_str();
  cmd->add_option("--precond", a->precond, "Preconditioning and loss: edm | vp | ve")->capture_default_str();
  cmd->add_option("--duration", a->duration, "Training duration in Mimg")->capture_default_str();
  cmd->add_option("--kimg", a->kimg, "Training duration in kimg (instead of --duration)");
  cmd->add_option("--batch", o.batch, "Total batch size")->capture_default_str();
  cmd->add_option("--batch-gpu", o.batch_gpu, "Micro-batch size (gradient accumulation); 0 = --batch");
  cmd->add_option("--workers", o.workers,
                  "Threads computing shares of the batch at once, sharing --threads (needs --dropout 0)")
      ->capture_default_str();
  add_arch_override_options(*cmd, a->sizes);
  cmd->add_option("--lr", o.lr, "Learning rate")->check(kFinitePositive)->capture_default_str();
  cmd->add_option("--ema", o.ema_mimg, "EMA half-life in Mimg")->capture_default_str();
  cmd->add_option("--ema-rampup", o.ema_rampup, "EMA ramp-up coefficient (0 = none)")->capture_default_str();
  cmd->add_option("--lr-rampup", o.lr_rampup_mimg, "Learning rate ramp-up in Mimg")->capture_default_str();
  cmd->add_option("--dropout", a->dropout, "Dropout probability")->capture_default_str();
  cmd->add_flag("--xflip", o.xflip, "Random left-right flips of the training images");
  cmd->add_option("--augment", a->augment, "EDM's augment probability (not supported: must be 0)");
  cmd->add_option("--seed", o.seed, "Random seed (network init, minibatches, noise, dropout)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--outdir", o.outdir, "Where to make the numbered run directory")->capture_default_str();
  cmd->add_option("--resume", o.resume, "Continue from a training-state-*.safetensors");
  cmd->add_option("--tick", o.tick_kimg, "Progress/stats interval in kimg")->capture_default_str();
  cmd->add_option("--snap", o.snap_ticks, "Ticks between snapshots (network, training state, sample grid)")
      ->capture_default_str();
  cmd->add_option("--pad", a->pad, "Zero-pad images to this resolution (e.g. 32 for 28x28 MNIST)")
      ->check(CLI::Range(0, 4096));
  cmd->add_option("--sample-steps", o.sample_steps, "Heun steps of the snapshot sample grids")
      ->capture_default_str();
  cmd->add_option("--sample-count", o.sample_count, "Images per snapshot sample grid (0 = no grids)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_flag("--f64", a->f64, "Train in float64 (default float32)");
  cmd->add_flag("--dry-run", a->dry_run, "Print the resolved options and exit");
  add_process_options(*cmd, a->dist_timeout);
  cmd->callback([a, cmd] { run_train(*a, *cmd); });
}

}  // namespace pidistill::cli
