#include "pidistill/edm/train.h"

#include "pidistill/nets/net_file.h"
#include "pidistill/optim/ema_halflife.h"
#include "pidistill/run/parallel_gradients.h"
#include "pidistill/util/checkpoint.h"
#include "pidistill/util/error.h"
#include "pidistill/util/files.h"
#include "pidistill/util/json_depth.h"
#include "pidistill/util/sha256.h"
#include "pidistill/util/stop_signal.h"
#include "pidistill/util/threads.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <filesystem>

namespace pidistill {

using json = nlohmann::ordered_json;

namespace {

const char* kCheckpointKind = "edm_train";

json options_json(const TrainOptions& o) {
  // Paths as portable_path gives them: these options travel inside every network snapshot.
  return json{{"data", portable_path(o.data)},
              {"cond", o.cond},
              {"arch", o.arch},
              {"precond", to_string(o.precond)},
              {"duration", o.duration_mimg},
              {"batch", o.batch},
              {"batch_gpu", o.batch_gpu},
              {"workers", o.workers},
              {"lr", o.lr},
              {"ema", o.ema_mimg},
              {"ema_rampup", o.ema_rampup},
              {"lr_rampup", o.lr_rampup_mimg},
              {"xflip", o.xflip},
              {"augment", 0},
              {"seed", o.seed},
              {"tick", o.tick_kimg},
              {"snap", o.snap_ticks},
              {"outdir", portable_path(o.outdir)},
              {"resume", portable_path(o.resume)},
              {"sample_steps", o.sample_steps},
              {"sample_count", o.sample_count},
              {"max_nonfinite_in_row", o.max_nonfinite_in_row},
              {"dtype", o.dtype},
              {"network_kwargs", json::parse(net_config_to_json(o.net))}};
}

// The network's tensors under their EDM names without 'model.' (what load_state_dict takes).
NamedTensors net_tensors(const UNet& net) {
  NamedTensors out;
  for (auto& [name, t] : state_dict(net)) out.emplace_back(name.substr(std::string("model.").size()), t);
  return out;
}

at::ScalarType dtype_from_string(const std::string& name) {
  if (name == "float32") return at::kFloat;
  if (name == "float64") return at::kDouble;
  fail("dtype", "unknown dtype '" + name + "'; hint: float32 or float64");
}

// First key where two network configs differ, as "key: a vs b"; empty when equal.
std::string config_difference(const std::string& a_text, const std::string& b_text) {
  auto a = json::parse(a_text), b = json::parse(b_text);
  for (auto& [key, value] : a.items())
    if (!b.contains(key) || b[key] != value)
      return "'" + key + "' is " + value.dump() + " in the checkpoint but " +
             (b.contains(key) ? b[key].dump() : "absent") + " in this run";
  for (auto& [key, value] : b.items())
    if (!a.contains(key)) return "'" + key + "' is absent from the checkpoint";
  return "";
}

}  // namespace

std::string train_options_to_json(const TrainOptions& options, int indent) {
  return options_json(options).dump(indent);
}

EdmTrainer::EdmTrainer(TrainOptions options, TrainData data, RunProcesses processes)
    : options_(std::move(options)),
      data_(std::move(data)),
      gen_(at::detail::createCPUGenerator(static_cast<uint64_t>(options_.seed))),
      dropout_gen_(at::detail::createCPUGenerator(static_cast<uint64_t>(options_.seed) ^ 0x5eedd509ull)),
      processes_(processes) {
  const auto& o = options_;
  const std::string& src = data_.source;
  if (!data_.images.defined() || data_.images.dim() != 4 || data_.images.scalar_type() != at::kByte)
    fail(src, "training images must be uint8 [N, C, H, W]");
  if (data_.images.size(0) == 0) fail(src, "the dataset holds no images");
  if (data_.images.size(1) != o.net.img_channels || data_.images.size(2) != o.net.img_resolution ||
      data_.images.size(3) != o.net.img_resolution)
    fail(src, "images are " + std::to_string(data_.images.size(1)) + "x" +
                  std::to_string(data_.images.size(2)) + "x" + std::to_string(data_.images.size(3)) +
                  " but the network takes " + std::to_string(o.net.img_channels) + "x" +
                  std::to_string(o.net.img_resolution) + "x" + std::to_string(o.net.img_resolution) +
                  "; hint: --pad 32 pads 28x28 images");
  if (o.cond && !data_.labels.defined()) fail(src, "--cond needs labels but the dataset has none");
  if (o.cond && data_.label_dim != o.net.label_dim)
    fail(src, "dataset has " + std::to_string(data_.label_dim) + " classes, network label_dim " +
                  std::to_string(o.net.label_dim));
  if (!o.cond && o.net.label_dim != 0)
    fail("--cond", "network has label_dim > 0 but training is unconditional");
  if (o.batch <= 0) fail("--batch", "must be positive");
  int64_t batch_gpu = o.batch_gpu > 0 ? o.batch_gpu : o.batch;
  if (o.batch % batch_gpu != 0)
    fail("--batch-gpu", std::to_string(batch_gpu) + " does not divide --batch " + std::to_string(o.batch));
  micro_batches(processes_.slice(o.batch), batch_gpu);  // each process's part too (Error naming --batch-gpu)
  if (o.workers < 1 || o.workers > 64) fail("--workers", "must be between 1 and 64");
  // Dropout draws its masks from one generator in call order; threads calling at once would race for it.
  if (o.workers > 1 && (o.net.dropout > 0 || o.net.label_dropout > 0))
    fail("--workers", "more than one worker needs --dropout 0 (and no label dropout): the masks come from one "
                      "generator in call order");
  worker_micro_batches(processes_.slice(o.batch), o.batch_gpu, static_cast<int>(o.workers));  // fits? (Error)
  share_threads_among(static_cast<int>(o.workers));
  if (!(o.duration_mimg > 0)) fail("--duration", "must be positive");
  if (!(o.lr > 0 && std::isfinite(o.lr))) fail("--lr", "must be a finite positive number");
  if (!(o.tick_kimg > 0)) fail("--tick", "must be positive");
  if (o.snap_ticks < 0) fail("--snap", "must be >= 0");
  if (o.sample_count < 0) fail("--sample-count", "must be >= 0");
  if (o.ema_mimg < 0 || o.ema_rampup < 0 || o.lr_rampup_mimg < 0)
    fail("--ema/--ema-rampup/--lr-rampup", "must be >= 0");
  auto dtype = dtype_from_string(o.dtype);

  // Why seed the default generator: make_unet initialises from it, as EDM's network construction does.
  torch::manual_seed(static_cast<uint64_t>(o.seed));
  net_ = make_unet(o.net);
  net_->to(dtype);
  net_->train();
  net_->generator = dropout_gen_;
  ema_ = make_unet(o.net);
  ema_->to(dtype);
  load_state_dict(*ema_, net_tensors(*net_), "EMA copy");
  ema_->eval();
  for (auto& p : ema_->parameters()) p.set_requires_grad(false);
  precond_ = std::make_shared<Precond>(net_, o.precond);
  loss_.type = o.precond;
  AdamConfig adam;
  adam.lr = o.lr;  // betas (0.9, 0.999), eps 1e-8 as EDM's optimizer_kwargs
  optimizer_ = std::make_unique<Adam>(net_->parameters(), adam);
  should_stop = [] { return stop_requested(); };
  // What resume checks: the images and labels the run trains on (another file under the same name would
  // silently change the run). Resolved at start, so that resuming works from any folder.
  const at::Tensor images = data_.images.contiguous();
  const at::Tensor labels = data_.labels.defined() ? data_.labels.contiguous() : at::Tensor();
  data_sha256_ = sha256_bytes({{images.data_ptr(), size_t(images.nbytes())},
                               {labels.defined() ? labels.data_ptr() : nullptr,
                                labels.defined() ? size_t(labels.nbytes()) : 0}});
  if (!o.resume.empty()) {
    options_.resume = std::filesystem::absolute(o.resume).lexically_normal().string();
    load_state(options_.resume);
  }
  std::vector<at::Tensor> replicated = net_->parameters();
  for (auto& b : net_->buffers()) replicated.push_back(b);
  for (auto& p : ema_->parameters()) replicated.push_back(p);
  processes_.broadcast(replicated);  // no-op for one process
}

int64_t EdmTrainer::total_nimg() const { return std::llround(options_.duration_mimg * 1e6); }

double EdmTrainer::current_lr() const {
  double rampup_nimg = options_.lr_rampup_mimg * 1e6;
  return options_.lr * std::min(static_cast<double>(cur_nimg_) / std::max(rampup_nimg, 1e-8), 1.0);
}

bool EdmTrainer::train_step() {
  const auto& o = options_;
  const int64_t batch_gpu = o.batch_gpu > 0 ? o.batch_gpu : o.batch;
  const BatchSlice mine = processes_.slice(o.batch);
  auto dtype = net_->parameters().front().scalar_type();
  for (auto& p : net_->parameters()) p.mutable_grad() = at::Tensor();  // EDM: zero_grad(set_to_none=True)

  // Why every round is drawn: the draws are those of the global batch, round by round as one process makes
  // them, so that a process trains on its slice with the numbers one process would have used there. All are
  // drawn before any is computed (the network draws from its own generator), so workers can share them out.
  std::vector<at::Tensor> images_of, rnd_of, n_unit_of, labels_of;  // this process's rounds
  for (const BatchSlice& round : micro_batches({0, o.batch}, batch_gpu)) {
    auto idx = at::randint(data_.images.size(0), {batch_gpu}, gen_, at::kLong);  // [b]
    auto images = data_.images.index_select(0, idx).to(dtype) / 127.5 - 1;       // [b, C, H, W]
    if (o.xflip) {
      auto flip = (at::rand({batch_gpu, 1, 1, 1}, gen_, at::TensorOptions(dtype)) < 0.5);  // [b, 1, 1, 1]
      images = at::where(flip, images.flip({3}), images);
    }
    LossDraws draws = draw_loss_noise(loss_, images, gen_);
    if (!mine.contains(round)) continue;  // another process's images
    images_of.push_back(images), rnd_of.push_back(draws.rnd), n_unit_of.push_back(draws.n_unit);
    if (o.cond) labels_of.push_back(at::one_hot(data_.labels.index_select(0, idx), data_.label_dim).to(dtype));
  }
  const at::Tensor images = at::cat(images_of), rnd = at::cat(rnd_of), n_unit = at::cat(n_unit_of);  // [n, ...]
  const at::Tensor labels = o.cond ? at::cat(labels_of) : at::Tensor();                                // [n, L]
  const auto parts = worker_micro_batches({0, images.size(0)}, o.batch_gpu, static_cast<int>(o.workers));
  std::vector<double> loss_sum(parts.size(), 0), loss_numel(parts.size(), 0);  // per worker
  accumulate_gradients(net_->parameters(), parts, [&](const BatchSlice& mb, int k) {
    const int64_t b0 = mb.begin, n = mb.size();
    auto loss = diffusion_loss(*precond_, loss_, images.narrow(0, b0, n),
                               labels.defined() ? labels.narrow(0, b0, n) : labels,
                               LossDraws{rnd.narrow(0, b0, n), n_unit.narrow(0, b0, n)});  // [n, C, H, W]
    loss_sum[k] += loss.detach().sum().item<double>();
    loss_numel[k] += static_cast<double>(loss.numel());
    // EDM: loss.sum().mul(loss_scaling / batch_gpu_total).backward()
    return loss.sum().mul(1.0 / static_cast<double>(o.batch));
  });
  std::vector<double> stats = {0, 0};  // loss sum, loss elements (summed over processes)
  for (size_t k = 0; k < parts.size(); ++k) stats[0] += loss_sum[k], stats[1] += loss_numel[k];
  processes_.sync_step(net_->parameters(), stats);
  last_loss_ = stats[0] / stats[1];

  if (!std::isfinite(stats[0])) {
    for (auto& p : net_->parameters()) p.mutable_grad() = at::Tensor();
    cur_nimg_ += o.batch;
    ++steps_;
    if (nonfinite_.record(false, o.max_nonfinite_in_row))
      fail("train", "the loss was not finite for " + std::to_string(nonfinite_.in_row) +
                        " steps in a row (at kimg " + std::to_string(cur_nimg_ / 1000) +
                        "); hint: lower --lr, or resume from an earlier training state");
    return false;
  }
  nonfinite_.record(true, o.max_nonfinite_in_row);

  optimizer_->config.lr = current_lr();
  {
    at::NoGradGuard no_grad;
    for (auto& p : net_->parameters())
      if (p.grad().defined()) at::nan_to_num_out(p.mutable_grad(), p.grad(), 0.0, 1e5, -1e5);
  }
  optimizer_->step();
  update_ema(*ema_, *net_, ema_beta(o.batch, cur_nimg_, o.ema_mimg * 1000, o.ema_rampup));
  cur_nimg_ += o.batch;
  ++steps_;
  return true;
}

void EdmTrainer::save_state(const std::string& path) const {
  NamedTensors tensors;
  add_with_prefix(tensors, "net.", net_tensors(*net_));
  add_with_prefix(tensors, "ema.", net_tensors(*ema_));
  add_with_prefix(tensors, "adam.", optimizer_->state());
  tensors.emplace_back("rng.train", generator_state(gen_));
  tensors.emplace_back("rng.dropout", generator_state(dropout_gen_));
  json state = {{"cur_nimg", cur_nimg_},
                {"cur_tick", cur_tick_},
                {"tick_start_nimg", tick_start_nimg_},
                {"steps", steps_},
                {"skipped_steps", nonfinite_.total},
                {"nonfinite_in_row", nonfinite_.in_row},
                {"net_config", json::parse(net_config_to_json(net_->config))},
                {"dtype", options_.dtype},
                {"data_sha256", data_sha256_},
                {"data_abs", std::filesystem::absolute(options_.data).lexically_normal().string()},
                {"options", options_json(options_)}};
  save_checkpoint(path, kCheckpointKind, tensors, state.dump());
}

void EdmTrainer::load_state(const std::string& path) {
  TensorFile file = load_checkpoint(path, kCheckpointKind);
  check_json_depth(checkpoint_state(file), /*max_depth=*/64, path + ": state");
  json state = json::parse(checkpoint_state(file));
  std::string diff = config_difference(state.at("net_config").dump(), net_config_to_json(net_->config));
  if (!diff.empty())
    fail(path, "checkpoint is of another network: " + diff +
                   "; hint: resume with the same --arch/--cbase/--cres/--cond");
  if (state.value("dtype", "float32") != options_.dtype)
    fail(path, "checkpoint was trained in " + state.value("dtype", "float32") + ", this run uses " +
                   options_.dtype);
  const std::string saved_sha = state.value("data_sha256", std::string());
  if (!saved_sha.empty() && saved_sha != data_sha256_)
    fail(data_.source, "the training images differ from those of the run being resumed (sha256 " +
                           saved_sha.substr(0, 12) + "... of " + state.value("data_abs", std::string("?")) +
                           ", now " + data_sha256_.substr(0, 12) +
                           "...); hint: resume with the same --data, --pad and --cond");
  load_state_dict(*net_, tensors_with_prefix(file, "net."), path);
  load_state_dict(*ema_, tensors_with_prefix(file, "ema."), path);
  optimizer_->load_state(tensors_with_prefix(file, "adam."), path);
  set_generator_state(gen_, file.get("rng.train"), path + " (rng.train)");
  set_generator_state(dropout_gen_, file.get("rng.dropout"), path + " (rng.dropout)");
  cur_nimg_ = state.at("cur_nimg").get<int64_t>();
  cur_tick_ = state.at("cur_tick").get<int64_t>();
  tick_start_nimg_ = state.at("tick_start_nimg").get<int64_t>();
  steps_ = state.at("steps").get<int64_t>();
  nonfinite_.total = state.at("skipped_steps").get<int64_t>();
  nonfinite_.in_row = state.at("nonfinite_in_row").get<int64_t>();
}

}  // namespace pidistill
