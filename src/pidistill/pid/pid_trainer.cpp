#include "pidistill/pid/pid_trainer.h"

#include "pidistill/edm/precond.h"
#include "pidistill/pid/grid_schedule.h"
#include "pidistill/pid/student_file.h"
#include "pidistill/run/parallel_gradients.h"
#include "pidistill/util/checkpoint.h"
#include "pidistill/util/error.h"
#include "pidistill/util/image_io.h"
#include "pidistill/util/seeds.h"
#include "pidistill/util/files.h"
#include "pidistill/util/sha256.h"
#include "pidistill/util/threads.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>

namespace pidistill {

using nlohmann::json;
namespace fs = std::filesystem;

namespace {

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

// Student: the teacher's architecture and weights, trained without dropout (as the paper does).
Student student_from(const LoadedNet& teacher, const at::Device& device, at::ScalarType dtype) {
  NetConfig sc = teacher.config;
  sc.dropout = 0;
  sc.label_dropout = 0;
  Student student(make_unet(sc));
  student.F->to(device, dtype);
  copy_weights(*student.F, *teacher.net);
  for (auto& p : student.F->parameters()) p.set_requires_grad(true);
  student.F->train();
  return student;
}

at::ScalarType dtype_of(const DistillOptions& o) { return o.f64 ? at::kDouble : at::kFloat; }

// Teacher: frozen, eval mode, its own preconditioning (the file's type and constants, an EDM pickle's).
std::shared_ptr<Precond> frozen_teacher(const LoadedNet& teacher, const at::Device& device,
                                        at::ScalarType dtype) {
  teacher.net->to(device, dtype);
  teacher.net->eval();
  for (auto& p : teacher.net->parameters()) p.set_requires_grad(false);
  return precond_for(teacher);
}

}  // namespace

PidTrainer::PidTrainer(DistillOptions options, const std::optional<NetConfig>& teacher_config,
                       RunProcesses processes)
    : o_(std::move(options)),
      processes_(processes),
      loaded_(load_net(o_.teacher, teacher_config)),
      teacher_(frozen_teacher(loaded_, at::Device(o_.device), dtype_of(o_))),
      student_(student_from(loaded_, at::Device(o_.device), dtype_of(o_))),
      gen_(at::detail::createCPUGenerator(o_.seed)) {
  const at::Device device(o_.device);
  const at::ScalarType dtype = dtype_of(o_);
  const NetConfig& tc = loaded_.config;
  if (o_.cond && tc.label_dim == 0)
    fail("--cond", "the teacher " + o_.teacher + " is unconditional (label_dim 0)");

  loss_config_.grid.N = o_.N;
  loss_config_.grid.last_index_backward = o_.last_index_backward;
  loss_config_.distance = pid_distance_from_string(o_.loss);
  loss_config_.huber_c = o_.huber_c;
  loss_config_.joint_student_call = o_.joint_student;
  const Precision low = o_.precision == "fp16" ? Precision::FP16 : Precision::BF16;
  loss_config_.student_precision = o_.precision == "bf16" || o_.precision == "fp16" ? low : Precision::FP32;
  loss_config_.teacher_precision = o_.precision == "fp32" ? Precision::FP32 : low;
  if (uses_loss_scale(o_)) loss_scale_.emplace().scale = o_.loss_scale_init;
  if (loss_config_.distance == PidDistance::LPIPS) {
    if (tc.img_channels != 3)
      fail("--loss lpips", "LPIPS compares RGB images; the teacher makes " + std::to_string(tc.img_channels) +
                               "-channel images (hint: --loss l2, l1 or huber)");
    if (o_.lpips_weights.empty()) fail("--lpips-weights", lpips_weights_hint());
    lpips_ = Lpips::load(o_.lpips_weights).to(device, dtype);
    loss_config_.lpips = &lpips_;
  }
  sampler_.mode = index_sampling_from_string(o_.index_sampling);
  params_ = student_.F->parameters();
  RAdamConfig radam_config;
  radam_config.lr = o_.lr;
  radam_ = std::make_unique<RAdam>(params_, radam_config);
  ema_ = std::make_unique<Ema>(params_, o_.ema);
  // What the run depends on, checked on resume: another file under the same name would silently change the
  // target.
  teacher_sha_ = sha256_file(o_.teacher);
  teacher_weights_sha_ = network_sha256(loaded_);
  share_threads_among(static_cast<int>(o_.workers));
}

std::string PidTrainer::resume(const std::string& checkpoint) {
  TensorFile ckpt = load_checkpoint(checkpoint, kind());
  json state = json::parse(checkpoint_state(ckpt));
  load_net_tensors(*student_.F, ckpt, "student.");
  radam_->load_state(tensors_with_prefix(ckpt, "radam."));
  ema_->load_state(tensors_with_prefix(ckpt, "ema."));
  set_generator_state(gen_, ckpt.get("rng.state"), checkpoint + " (rng.state)");
  step_ = state.at("step").get<int64_t>();
  nonfinite_.total = state.value("nonfinite_total", int64_t{0});
  nonfinite_.in_row = state.value("nonfinite_in_a_row", int64_t{0});
  if (loss_scale_ && state.contains("loss_scale")) {
    loss_scale_->scale = state.at("loss_scale").get<double>();
    loss_scale_->good_in_row = state.value("loss_scale_good_in_row", int64_t{0});
    loss_scale_->skipped = state.value("loss_scale_skipped", int64_t{0});
  }
  if (sampler_.mode == IndexSampling::Loss)
    sampler_.load_state(ckpt.get("index_sampling.loss_ema"), checkpoint + " (index_sampling.loss_ema)");
  // The weights' hash when the checkpoint has it (a file whose notes were edited is the same teacher), else the
  // file's bytes (checkpoints written before the weights' hash was recorded).
  const std::string saved_weights = state.value("teacher_weights_sha256", std::string());
  const std::string saved_file = state.value("teacher_sha256", std::string());
  const bool weights_known = !saved_weights.empty();
  const std::string& saved = weights_known ? saved_weights : saved_file;
  const std::string& now = weights_known ? teacher_weights_sha_ : teacher_sha_;
  if (!saved.empty() && saved != now)
    fail(o_.teacher, std::string("the teacher ") + (weights_known ? "network" : "file") +
                         " changed since the run started (sha256 " + saved.substr(0, 12) + "..., now " +
                         now.substr(0, 12) +
                         "...); hint: resume with the teacher it was started with (--teacher PATH), or start a "
                         "new run");
  return state.dump();
}

std::vector<at::Tensor> PidTrainer::replicated_state() const {
  std::vector<at::Tensor> out = params_;
  for (const auto& b : student_.F->buffers()) out.push_back(b);
  for (const auto& average : ema_->averages) out.insert(out.end(), average.begin(), average.end());
  return out;
}

const PidStepReport& PidTrainer::step(const std::function<void()>& before_abort) {
  const at::ScalarType dtype = dtype_of(o_);
  const at::Device device(o_.device);
  const NetConfig& tc = loaded_.config;
  const int64_t label_dim = tc.label_dim;
  // Draw order fixed (z, indices, labels), whole global batch at once, so neither micro-batches nor the
  // number of processes change the draws.
  report_ = PidStepReport();
  report_.N =
      grid_size_at(step_, o_.N, o_.N_start, o_.N_refine_every);  // a function of the step: resume-safe
  loss_config_.grid.N = report_.N;
  auto z = at::randn({o_.batch, tc.img_channels, tc.img_resolution, tc.img_resolution}, gen_,
                     at::TensorOptions().dtype(dtype));  // z: [batch, C, H, W]
  IndexDraw draw = sampler_.draw(o_.batch, loss_config_.grid, gen_);
  const at::Tensor& indices = draw.indices;  // [batch]
  at::Tensor weights;                        // [batch] importance weights, undefined for uniform draws
  if (draw.weights.defined()) weights = draw.weights.to(device, dtype);
  at::Tensor labels;
  if (label_dim > 0)
    labels = one_hot(at::randint(0, label_dim, {o_.batch}, gen_, at::kLong), label_dim, dtype);
  z = z.to(device);
  if (labels.defined()) labels = labels.to(device);

  radam_->zero_grad();
  const auto parts = worker_micro_batches(processes_.slice(o_.batch), o_.batch_gpu, static_cast<int>(o_.workers));
  std::vector<double> worker_loss(parts.size(), 0.0);  // per worker: workers run at once
  std::vector<LossBinTally> worker_bins(parts.size());
  accumulate_gradients(params_, parts, [&](const BatchSlice& mb, int k) {
    const int64_t b0 = mb.begin, n = mb.size();
    auto out = pid_loss(student_, *teacher_, z.narrow(0, b0, n), indices.narrow(0, b0, n), loss_config_,
                        labels.defined() ? labels.narrow(0, b0, n) : labels);
    // Why unweighted: the bins report (and the sampler tracks) each noise level's own loss.
    worker_bins[k].add(out.indices, out.loss.detach(), report_.N);
    // Why the weights: with p(i) not uniform, (1/n)/p(i) keeps the expected loss that of uniform draws.
    auto per_sample = weights.defined() ? out.loss * weights.narrow(0, b0, n) : out.loss;  // [n]
    auto loss =
        per_sample.sum() / static_cast<double>(o_.batch);  // batch mean, accumulated over micro-batches
    worker_loss[k] += loss.item<double>();
    return loss_scale_ ? loss * loss_scale_->scale : loss;  // a power of two: unscaled exactly below
  });
  double loss_value = 0;
  for (size_t k = 0; k < parts.size(); ++k) {
    loss_value += worker_loss[k];
    report_.bins.add(worker_bins[k]);
  }
  if (processes_
          .sync) {  // the loss and the bins of the whole batch, so every process updates the sampler alike
    std::vector<double> stats = {loss_value};
    for (int b = 0; b < kLossBins; ++b) stats.push_back(report_.bins.sum[b]);
    for (int b = 0; b < kLossBins; ++b) stats.push_back(static_cast<double>(report_.bins.count[b]));
    processes_.sync_step(params_, stats);
    loss_value = stats[0];
    for (int b = 0; b < kLossBins; ++b) {
      report_.bins.sum[b] = stats[1 + b];
      report_.bins.count[b] = static_cast<int64_t>(stats[1 + kLossBins + b]);
    }
  }
  double grad_sq = 0;
  for (const auto& p : params_)
    if (p.grad().defined()) grad_sq += p.grad().to(at::kDouble).square().sum().item<double>();
  report_.loss = loss_value;
  report_.grad_norm = std::sqrt(grad_sq);
  const bool grads_finite = std::isfinite(report_.grad_norm);
  if (loss_scale_) {
    report_.loss_scale = loss_scale_->scale;
    if (grads_finite) {
      const double unscale = 1.0 / loss_scale_->scale;
      for (auto& p : params_)
        if (p.grad().defined()) p.mutable_grad().mul_(unscale);
      report_.grad_norm *= unscale;
    }
    report_.overflow = std::isfinite(loss_value) && !grads_finite;
  }
  report_.finite = std::isfinite(loss_value) && grads_finite;
  ++step_;
  // A skipped step still counts, so a run stops at --steps. An overflow of scaled gradients is the scale's
  // fault, not the run's: it lowers the scale and does not count toward --max-nonfinite.
  if (report_.overflow) {
    loss_scale_->update(false);
  } else {
    if (nonfinite_.record(report_.finite, o_.max_nonfinite)) {
      if (before_abort) before_abort();
      fail("distill", std::to_string(nonfinite_.in_row) + " non-finite losses in a row at step " +
                          std::to_string(step_) + "; hint: lower --lr or check the teacher");
    }
    if (loss_scale_ && report_.finite) loss_scale_->update(true);
  }
  if (report_.finite) {
    radam_->step();
    ema_->update(params_);
    sampler_.update(report_.bins);
  }
  return report_;
}

void PidTrainer::save_state(const std::string& path, const std::string& extra_json) const {
  NamedTensors tensors = net_tensors(*student_.F, "student.");
  add_with_prefix(tensors, "radam.", radam_->state_tensors());
  add_with_prefix(tensors, "ema.", ema_->state_tensors());
  tensors.emplace_back("rng.state", generator_state(gen_));
  if (sampler_.mode == IndexSampling::Loss) tensors.emplace_back("index_sampling.loss_ema", sampler_.state());
  json state = {
      {"step", step_}, {"nonfinite_total", nonfinite_.total}, {"nonfinite_in_a_row", nonfinite_.in_row}};
  if (loss_scale_) {
    state["loss_scale"] = loss_scale_->scale;
    state["loss_scale_good_in_row"] = loss_scale_->good_in_row;
    state["loss_scale_skipped"] = loss_scale_->skipped;
  }
  const json extra = json::parse(extra_json);  // named: items() of a temporary would dangle
  for (auto& [key, value] : extra.items()) state[key] = value;
  state["teacher_sha256"] = teacher_sha_;
  state["teacher_weights_sha256"] = teacher_weights_sha_;
  state["teacher_abs"] = fs::absolute(o_.teacher).lexically_normal().string();
  state["options"] = json::parse(to_json(o_));
  save_checkpoint(path, kind(), tensors, state.dump());
}

void PidTrainer::write_grid(const std::string& path) {
  const NetConfig& tc = loaded_.config;
  const std::vector<int64_t> seeds = parse_seeds(o_.grid_seeds);
  auto z = latents_for_seeds(seeds, tc.img_channels, tc.img_resolution)
               .to(at::Device(o_.device), dtype_of(o_));  // [S, C, H, W]
  at::Tensor labels;
  if (tc.label_dim > 0) {
    std::vector<int64_t> classes;
    for (int64_t s : seeds) classes.push_back(s % tc.label_dim);
    labels = one_hot(at::tensor(classes, at::kLong), tc.label_dim, dtype_of(o_)).to(at::Device(o_.device));
  }
  student_.F->eval();
  auto images = one_call_generate(student_, z, labels);
  student_.F->train();
  write_png_grid(path, images.cpu());
}

Student PidTrainer::exported_student() const {
  const double rate = export_rate(o_, step_);
  auto F = clone_net(*student_.F);
  if (rate > 0) {
    const size_t r = std::find(o_.ema.begin(), o_.ema.end(), rate) - o_.ema.begin();
    torch::NoGradGuard no_grad;
    auto copy_params = F->parameters();
    for (size_t i = 0; i < copy_params.size(); ++i) copy_params[i].copy_(ema_->averages[r][i]);
  }
  F->eval();
  return Student(F, student_.constants);
}

void PidTrainer::export_student(const std::string& path) const {
  const double rate = export_rate(o_, step_);
  std::map<std::string, std::string> meta = {{"teacher", portable_path(o_.teacher)},
                                             {"teacher_sha256", teacher_sha_},
                                             {"teacher_weights_sha256", teacher_weights_sha_},
                                             {"loss", o_.loss},
                                             {"N", std::to_string(o_.N)},
                                             {"step", std::to_string(step_)}};
  meta["ema"] = rate > 0 ? json(rate).dump() : "none (raw student weights)";
  save_student(path, exported_student(), loaded_.precond, meta);
}

}  // namespace pidistill
