// EDM's training loop on a tiny network and a tiny random dataset: resume bit-exactness, EMA and
// learning-rate formulas, non-finite steps, Adam against torch's, checkpoint atomicity and architecture
// checks.
#include "pidistill/optim/adam.h"
#include "pidistill/optim/ema_halflife.h"
#include "pidistill/edm/train.h"
#include "pidistill/nets/net_file.h"
#include "pidistill/util/checkpoint.h"
#include "pidistill/util/error.h"
#include "pidistill/util/files.h"
#include "test_common.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include <cmath>
#include <filesystem>
#include <sstream>
#include <vector>

using namespace pidistill;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

std::string temp_dir(const std::string& name) {
  auto dir =
      fs::temp_directory_path() / ("pidistill_test_edm_train_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir.string();
}

TrainData tiny_data() {
  auto gen = at::detail::createCPUGenerator(42);
  TrainData data;
  data.images = at::randint(0, 256, {32, 1, 8, 8}, gen, at::kLong).to(at::kByte);  // [32, 1, 8, 8]
  data.labels = at::randint(0, 3, {32}, gen, at::kLong);
  data.label_dim = 3;
  data.source = "tiny";
  return data;
}

TrainOptions tiny_options(const std::string& outdir) {
  TrainOptions o;
  o.data = "tiny";
  o.net = net_config_preset("ddpmpp", 8, 1);
  o.net.model_channels = 8;
  o.net.channel_mult = {1, 2};
  o.net.num_blocks = 1;
  o.net.attn_resolutions = {4};
  o.net.dropout = 0.1;      // dropout masks must resume exactly too
  o.duration_mimg = 48e-6;  // 6 steps of 8
  o.batch = 8;
  o.batch_gpu = 4;  // 2 accumulation rounds
  o.lr = 2e-3;
  o.lr_rampup_mimg = 32e-6;  // ramp over the first 4 steps
  o.ema_mimg = 20e-6;
  o.xflip = true;
  o.seed = 7;
  o.tick_kimg = 0.016;  // a tick every 2 steps
  o.snap_ticks = 1;
  o.outdir = outdir;
  o.sample_steps = 2;
  o.sample_count = 2;
  o.progress = false;
  return o;
}

void expect_same_weights(const UNet& a, const UNet& b, const std::string& what) {
  auto sa = state_dict(a), sb = state_dict(b);
  ASSERT_EQ(sa.size(), sb.size());
  for (size_t i = 0; i < sa.size(); ++i)
    EXPECT_TRUE(sa[i].second.equal(sb[i].second)) << what << " " << sa[i].first;
}

}  // namespace

TEST(EdmTrain, InterruptedAndResumedEqualsUninterrupted) {
  auto dir = temp_dir("resume");
  EdmTrainer full(tiny_options(dir), tiny_data());
  auto full_result = full.run();
  EXPECT_EQ(full_result.cur_nimg, 48);
  EXPECT_EQ(full_result.steps, 6);
  EXPECT_FALSE(full_result.interrupted);
  EXPECT_TRUE(fs::exists(full_result.last_network));
  EXPECT_TRUE(fs::exists(fs::path(full_result.run_dir) / "training_options.json"));
  EXPECT_TRUE(fs::exists(fs::path(full_result.run_dir) / "stats.jsonl"));
  EXPECT_TRUE(fs::exists(fs::path(full_result.run_dir) / "samples-000000.png"));

  EdmTrainer first(tiny_options(dir), tiny_data());
  int calls = 0;
  first.should_stop = [&] { return ++calls == 3; };  // Ctrl-C after the third step
  auto first_result = first.run();
  EXPECT_TRUE(first_result.interrupted);
  EXPECT_EQ(first_result.cur_nimg, 24);
  ASSERT_TRUE(fs::exists(first_result.last_state));

  auto options = tiny_options(dir);
  options.resume = first_result.last_state;
  EdmTrainer resumed(options, tiny_data());
  EXPECT_EQ(resumed.cur_nimg(), 24);
  auto resumed_result = resumed.run();
  EXPECT_EQ(resumed_result.cur_nimg, 48);
  EXPECT_EQ(resumed_result.steps, 6);
  expect_same_weights(*resumed.net(), *full.net(), "net");
  expect_same_weights(*resumed.ema(), *full.ema(), "ema");

  // The weights moved, so the equality above is not trivially true.
  EdmTrainer untrained(tiny_options(dir), tiny_data());
  EXPECT_FALSE(state_dict(*untrained.net())[0].second.equal(state_dict(*full.net())[0].second) &&
               state_dict(*untrained.net()).back().second.equal(state_dict(*full.net()).back().second));

  // The exported network loads for generation and equals the EMA.
  auto loaded = load_net(full_result.last_network);
  expect_same_weights(*loaded.net, *full.ema(), "exported");
  fs::remove_all(dir);
}

namespace {

int count_states(const std::string& dir) {
  int n = 0;
  for (const auto& e : fs::directory_iterator(dir)) n += e.path().filename().string().rfind("training-state-", 0) == 0;
  return n;
}

std::vector<int64_t> logged_ticks(const std::string& stats) {
  std::vector<int64_t> ticks;
  std::istringstream in(read_file(stats));
  for (std::string line; std::getline(in, line);) ticks.push_back(nlohmann::json::parse(line).at("tick").get<int64_t>());
  return ticks;
}

}  // namespace

// Resume hygiene: the run continues in its directory with one training state, every tick logged once (a line
// logged after the checkpoint, before a kill, is dropped), from any folder through a relative path, and only
// on the same training images.
TEST(EdmTrain, SampleCountZeroWritesNoGrid) {
  auto options = tiny_options(temp_dir("nogrid"));
  options.sample_count = 0;
  auto result = EdmTrainer(options, tiny_data()).run();
  EXPECT_TRUE(fs::exists(result.last_network));  // snapshots as usual
  for (const auto& e : fs::directory_iterator(result.run_dir))
    EXPECT_NE(e.path().filename().string().rfind("samples-", 0), 0u) << e.path();
}

TEST(EdmTrain, ResumeKeepsOneStateLogsEachTickOnceFromAnyFolderOnTheSameData) {
  const auto dir = temp_dir("hygiene");
  EdmTrainer full(tiny_options(dir + "/full"), tiny_data());
  const TrainResult full_result = full.run();
  EXPECT_EQ(count_states(full_result.run_dir), 1);
  const std::vector<int64_t> full_ticks = logged_ticks(full_result.run_dir + "/stats.jsonl");
  EXPECT_EQ(full_ticks, (std::vector<int64_t>{0, 1, 2, 3}));

  EdmTrainer first(tiny_options(dir + "/runs"), tiny_data());
  int calls = 0;
  first.should_stop = [&] { return ++calls == 4; };  // stopped after step 4 of 6
  const TrainResult first_result = first.run();
  ASSERT_TRUE(first_result.interrupted);
  EXPECT_EQ(count_states(first_result.run_dir), 1);
  append_line(first_result.run_dir + "/stats.jsonl", R"({"tick":99,"kimg":1.0})");

  // Resumed through a path relative to one folder; the run itself starts after moving to another.
  const fs::path cwd = fs::current_path();
  fs::current_path(dir + "/runs");
  TrainOptions options = tiny_options("unused-on-resume");
  options.resume = fs::relative(first_result.last_state, dir + "/runs").string();
  ASSERT_TRUE(fs::path(options.resume).is_relative());
  TrainResult resumed_result;
  {
    EdmTrainer resumed(options, tiny_data());
    fs::current_path(dir);
    resumed_result = resumed.run();
    expect_same_weights(*resumed.net(), *full.net(), "net");
  }
  fs::current_path(cwd);
  EXPECT_EQ(fs::canonical(resumed_result.run_dir), fs::canonical(first_result.run_dir));
  EXPECT_FALSE(fs::exists(fs::path(dir) / "unused-on-resume"));
  EXPECT_EQ(count_states(first_result.run_dir), 1);
  EXPECT_EQ(logged_ticks(first_result.run_dir + "/stats.jsonl"), full_ticks);
  const json state = json::parse(checkpoint_state(load_checkpoint(resumed_result.last_state, "edm_train")));
  EXPECT_EQ(state.at("cur_nimg").get<int64_t>(), 48);
  EXPECT_EQ(state.at("options").at("resume").get<std::string>(), fs::path(resumed_result.last_state).filename().string())
      << "absolute paths are recorded by their last component only";

  // Other images under the same name: refused, naming the data and the hint.
  TrainData other = tiny_data();
  other.images[0][0][0][0] = other.images[0][0][0][0].item<uint8_t>() ^ 1;
  options.resume = resumed_result.last_state;
  test::expect_error([&] { EdmTrainer trainer(options, other); }, {"tiny", "training images differ", "sha256", "--data"});
  fs::remove_all(dir);
}

TEST(EdmTrain, ResumeFromAnotherArchitectureNamesTheKey) {
  auto dir = temp_dir("arch");
  EdmTrainer trainer(tiny_options(dir), tiny_data());
  auto path = (fs::path(dir) / "state.safetensors").string();
  trainer.save_state(path);
  auto options = tiny_options(dir);
  options.net.model_channels = 16;
  options.resume = path;
  try {
    EdmTrainer other(options, tiny_data());
    FAIL() << "expected an Error";
  } catch (const Error& e) {
    std::string what = e.what();
    EXPECT_NE(what.find("model_channels"), std::string::npos) << what;
    EXPECT_NE(what.find(path), std::string::npos) << what;
  }
  // A network file is not a training state.
  options = tiny_options(dir);
  auto net_path = (fs::path(dir) / "net.safetensors").string();
  save_net(net_path, *trainer.net(), "edm");
  options.resume = net_path;
  EXPECT_THROW(EdmTrainer(options, tiny_data()), Error);
  fs::remove_all(dir);
}

TEST(EdmTrain, EmaBetaFollowsEdmFormula) {
  // No ramp-up: beta = 0.5^(batch / (ema_kimg * 1000)).
  EXPECT_DOUBLE_EQ(ema_beta(512, 1000000, 500, 0), std::pow(0.5, 512.0 / 500000));
  // Ramp-up: half-life min(500k, cur_nimg * 0.05).
  EXPECT_DOUBLE_EQ(ema_beta(512, 1000000, 500, 0.05), std::pow(0.5, 512.0 / 50000));
  EXPECT_DOUBLE_EQ(ema_beta(512, 100000000, 500, 0.05), std::pow(0.5, 512.0 / 500000));
  EXPECT_EQ(ema_beta(512, 0, 500, 0.05), 0.0);  // first step: the EMA becomes the network

  auto net = torch::nn::Linear(3, 2), ema = torch::nn::Linear(3, 2);
  auto before = ema->weight.detach().clone();
  update_ema(*ema, *net, 0.25);
  EXPECT_TRUE(ema->weight.allclose(net->weight * 0.75 + before * 0.25, 1e-6, 1e-7));
}

TEST(EdmTrain, LearningRateRampsUpLinearly) {
  auto dir = temp_dir("lr");
  EdmTrainer trainer(tiny_options(dir), tiny_data());  // lr 2e-3 over 32 images
  EXPECT_EQ(trainer.current_lr(), 0.0);                // EDM's first step has lr 0
  trainer.train_step();
  EXPECT_DOUBLE_EQ(trainer.current_lr(), 2e-3 * 8 / 32);
  for (int i = 0; i < 4; ++i) trainer.train_step();
  EXPECT_DOUBLE_EQ(trainer.current_lr(), 2e-3);
  fs::remove_all(dir);
}

TEST(EdmTrain, NonFiniteLossSkipsTheStepAndAbortsAfterManyInARow) {
  auto dir = temp_dir("nonfinite");
  auto options = tiny_options(dir);
  options.max_nonfinite_in_row = 3;
  EdmTrainer trainer(options, tiny_data());
  ASSERT_TRUE(trainer.train_step());
  // The input convolution: every image passes through it.
  auto param = trainer.net()->named_parameters()["enc.8x8_conv.weight"];
  auto saved = param.detach().clone();
  {
    torch::NoGradGuard no_grad;
    param.view({-1})[0] = NAN;
  }
  auto before = state_dict(*trainer.net());
  std::vector<at::Tensor> before_copy;
  for (auto& [n, t] : before) before_copy.push_back(t.clone());
  auto ema_before = state_dict(*trainer.ema())[1].second.clone();
  EXPECT_FALSE(trainer.train_step());
  EXPECT_EQ(trainer.skipped_steps(), 1);
  EXPECT_EQ(trainer.cur_nimg(), 16);
  auto after = state_dict(*trainer.net());
  for (size_t i = 0; i < after.size(); ++i)  // NaN-aware: the corrupted weight stays as it was too
    EXPECT_TRUE(at::allclose(after[i].second, before_copy[i], 0, 0, /*equal_nan=*/true)) << after[i].first;
  EXPECT_TRUE(state_dict(*trainer.ema())[1].second.equal(ema_before));
  {
    torch::NoGradGuard no_grad;
    param.copy_(saved);
  }
  EXPECT_TRUE(trainer.train_step());  // recovers; the count of steps in a row starts again
  {
    torch::NoGradGuard no_grad;
    param.view({-1})[0] = INFINITY;
  }
  EXPECT_FALSE(trainer.train_step());
  EXPECT_FALSE(trainer.train_step());
  try {
    trainer.train_step();
    FAIL() << "expected an Error after 3 non-finite steps in a row";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("not finite for 3 steps"), std::string::npos) << e.what();
  }
  fs::remove_all(dir);
}

TEST(EdmTrain, AdamMatchesTorchAdam) {
  auto gen = at::detail::createCPUGenerator(3);
  auto a = at::randn({5, 4}, gen, at::kDouble).set_requires_grad(true);
  auto b = a.detach().clone().set_requires_grad(true);
  AdamConfig config;
  config.lr = 0.01;
  Adam ours({a}, config);
  torch::optim::Adam theirs({b}, torch::optim::AdamOptions(0.01).betas({0.9, 0.999}).eps(1e-8));
  for (int step = 0; step < 5; ++step) {
    auto g = at::randn({5, 4}, gen, at::kDouble) * std::pow(10.0, -step);
    a.mutable_grad() = g.clone();
    b.mutable_grad() = g.clone();
    ours.step();
    theirs.step();
  }
  EXPECT_CLOSE(a.detach(), b.detach(), 1e-15);

  // State round trip: a copy continues exactly like the original.
  auto c = a.detach().clone().set_requires_grad(true);
  Adam copy({c}, config);
  copy.load_state(ours.state(), "test");
  auto g = at::randn({5, 4}, gen, at::kDouble);
  a.mutable_grad() = g.clone();
  c.mutable_grad() = g.clone();
  ours.step();
  copy.step();
  EXPECT_TRUE(a.equal(c));
  auto d = at::zeros({2}, at::kDouble).set_requires_grad(true);
  Adam wrong({d}, config);
  EXPECT_THROW(wrong.load_state(ours.state(), "test"), Error);  // moments of another shape
}

TEST(EdmTrain, FailedCheckpointWriteKeepsThePreviousFile) {
  auto dir = temp_dir("atomic");
  auto path = (fs::path(dir) / "state.safetensors").string();
  save_checkpoint(path, "edm_train", {{"x", at::ones({3})}}, R"({"step": 1})");
  // The next write fails half-way, as on a full disk.
  EXPECT_EXIT(test::with_file_size_limit(64,
                                         [&] {
                                           EXPECT_THROW(
                                               save_checkpoint(path, "edm_train", {{"x", at::zeros({3000})}},
                                                               R"({"step": 2})"),
                                               Error);
                                         }),
              testing::ExitedWithCode(0), "");
  auto file = load_checkpoint(path, "edm_train");
  EXPECT_TRUE(file.get("x").equal(at::ones({3})));
  EXPECT_EQ(checkpoint_state(file), R"({"step": 1})");
  EXPECT_THROW(load_checkpoint(path, "pid_distill"), Error);  // another kind of checkpoint

  // Generator state round trip.
  auto gen = at::detail::createCPUGenerator(5);
  at::randn({7}, gen);
  auto state = generator_state(gen);
  auto expected = at::randn({4}, gen);
  auto other = at::detail::createCPUGenerator(0);
  set_generator_state(other, state, "test");
  EXPECT_TRUE(at::randn({4}, other).equal(expected));
  EXPECT_THROW(set_generator_state(other, at::zeros({3}, at::kByte), "test"), Error);
  fs::remove_all(dir);
}

// --workers: the batch's micro-batches computed by threads at once give the steps of one thread (within float
// rounding of the summation order), the same every time; dropout, whose masks come from one generator in call
// order, is refused with more than one worker.
TEST(EdmTrain, WorkersComputeTheStepsOfOneThread) {
  auto trained = [](const std::string& name, int64_t workers) {
    TrainOptions o = tiny_options(temp_dir(name));
    o.net.dropout = 0;
    o.sample_count = 0;
    o.workers = workers;
    EdmTrainer trainer(o, tiny_data());
    trainer.run();
    return std::make_pair(state_dict(*trainer.net()), trainer.last_loss());
  };
  const auto [one, loss_one] = trained("w1", 1);
  const auto [two, loss_two] = trained("w2", 2);
  const auto [two_again, loss_two_again] = trained("w2b", 2);
  // The same images and noise: the last step's loss agrees to float rounding. Adam then moves near-zero
  // gradients by up to lr each, so the weights after 6 steps agree to 1e-4 of their scale (measured 6.6e-5).
  EXPECT_NEAR(loss_two, loss_one, 1e-5 * std::abs(loss_one));
  EXPECT_EQ(loss_two, loss_two_again);
  ASSERT_EQ(one.size(), two.size());
  for (size_t i = 0; i < one.size(); ++i) {
    const double scale = std::max(1e-3, one[i].second.abs().max().item<double>());
    EXPECT_LE((two[i].second - one[i].second).abs().max().item<double>() / scale, 1e-4) << one[i].first;
    EXPECT_TRUE(two[i].second.equal(two_again[i].second)) << one[i].first << ": two runs with 2 workers differ";
  }
  TrainOptions with_dropout = tiny_options(temp_dir("w_bad"));
  with_dropout.workers = 2;  // tiny_options has dropout 0.1
  test::expect_error([&] { EdmTrainer trainer(with_dropout, tiny_data()); }, {"--workers", "--dropout 0"});
}
