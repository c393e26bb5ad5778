// One PID distillation's state and step: the frozen teacher, the student initialised from it, RAdam, the
// EMAs, the seeded draws and the index sampler, checkpointed whole. distill.cpp runs it on the run harness.
#pragma once
#include "pidistill/metrics/lpips.h"
#include "pidistill/nets/net_file.h"
#include "pidistill/optim/ema_rates.h"
#include "pidistill/optim/loss_scale.h"
#include "pidistill/optim/radam.h"
#include "pidistill/pid/distill_options.h"
#include "pidistill/pid/index_sampling.h"
#include "pidistill/pid/loss_bins.h"
#include "pidistill/pid/pid_loss.h"
#include "pidistill/pid/student.h"
#include "pidistill/run/nonfinite.h"
#include "pidistill/run/processes.h"

#include <ATen/core/Generator.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

namespace pidistill {

struct Precond;

// What one step did, for the stats lines and the progress bar.
struct PidStepReport {
  bool finite = true;    // false: skipped (loss or gradient norm not finite) and counted
  double loss = 0;       // batch-mean loss (importance-weighted when the index draws are)
  double grad_norm = 0;  // of the batch gradient
  LossBinTally bins;     // per-noise-level losses of the step's samples (all processes)
  int64_t N = 0;         // grid size of the step
  bool overflow = false;  // loss scaling: finite loss, gradients overflowed; skipped, scale halved, not counted
  double loss_scale = 0;  // the scale this step's loss was multiplied by (0: no loss scaling)
};

class PidTrainer {
 public:
  // Loads the teacher (frozen), makes the student from it and the optimiser state; Error naming the option
  // for a teacher that does not fit the options (--cond, --loss lpips).
  PidTrainer(DistillOptions options, const std::optional<NetConfig>& teacher_config, RunProcesses processes);

  // Restores student, RAdam, EMAs, the generator and the sampler from a checkpoint of this kind; Error when
  // the teacher file changed since the run started. Returns the checkpoint's JSON state.
  std::string resume(const std::string& checkpoint);

  // One optimiser step on this process's slice of the global batch. With `max_nonfinite` non-finite steps in
  // a row, calls before_abort (a checkpoint) and throws Error.
  const PidStepReport& step(const std::function<void()>& before_abort);

  // The checkpoint: student.*, radam.*, ema.*, rng.state (+ index_sampling.loss_ema) and the JSON state
  // with `extra` keys (elapsed time, ...) added.
  void save_state(const std::string& path, const std::string& extra_json) const;
  // One-call samples from the --grid-seeds, the same images at every snapshot.
  void write_grid(const std::string& path);
  // The weights export_rate selects (an EMA copy or the raw student), in eval mode.
  Student exported_student() const;
  // exported_student() as a student file, with the teacher's precond and provenance metadata.
  void export_student(const std::string& path) const;

  // The tensors every process must hold alike when training starts: the student's parameters and buffers
  // and every EMA copy (broadcast from rank 0 after construction and resume).
  std::vector<at::Tensor> replicated_state() const;

  static const char* kind() { return "pid_distill"; }  // checkpoint kind
  const DistillOptions& options() const { return o_; }
  const NetConfig& teacher_config() const { return loaded_.config; }
  int64_t steps_done() const { return step_; }
  const NonFiniteCount& nonfinite() const { return nonfinite_; }
  // The dynamic loss scale (--loss-scale), or nullptr when the run does not scale its loss.
  const DynamicLossScale* loss_scale() const { return loss_scale_ ? &*loss_scale_ : nullptr; }

 private:
  DistillOptions o_;
  RunProcesses processes_;
  LoadedNet loaded_;                  // the teacher network and its file's preconditioning
  std::shared_ptr<Precond> teacher_;  // frozen, eval mode
  Student student_;
  PidLossConfig loss_config_;
  Lpips lpips_;
  IndexSampler sampler_;
  std::vector<at::Tensor> params_;
  std::unique_ptr<RAdam> radam_;
  std::unique_ptr<Ema> ema_;
  at::Generator gen_;  // z, grid indices, labels
  std::string teacher_sha_;          // the teacher file's bytes
  std::string teacher_weights_sha_;  // what the teacher computes (network_sha256)
  int64_t step_ = 0;
  NonFiniteCount nonfinite_;
  std::optional<DynamicLossScale> loss_scale_;  // set when the run scales its loss (uses_loss_scale)
  PidStepReport report_;
};

}  // namespace pidistill
