// The feature networks behind the metrics: the TorchScript (Inception-style) call on the golden stand-in, its
// errors, the Fashion-MNIST classifier (file round trip, input rules, learning on a separable toy set), and
// measure_images / reference files around any detector.
#include "pidistill/io/npz.h"
#include "pidistill/metrics/classifier.h"
#include "pidistill/metrics/evaluate.h"
#include "pidistill/metrics/feature_detector.h"
#include "pidistill/metrics/train_classifier.h"
#include "test_common.h"

#include <torch/script.h>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>

using namespace pidistill;
using pidistill::test::expect_error;
using pidistill::test::golden;
using pidistill::test::load_golden;

namespace {

namespace fs = std::filesystem;

std::string temp_path(const std::string& name) {
  static const fs::path dir = [] {
    fs::path d = fs::temp_directory_path() / ("pidistill_test_detector_" + std::to_string(getpid()));
    fs::create_directories(d);
    return d;
  }();
  return (dir / name).string();
}

TEST(TorchScriptDetector, GoldenFeaturesAndProbabilities) {
  auto det = load_detector(golden("fid/tiny_detector.pt"));
  TensorFile io = load_golden("fid/tiny_detector_io.safetensors");
  at::Tensor images = io.get("images").to(at::kByte);  // [6, 3, 32, 32]
  EXPECT_EQ(det->feature_dim(), 2048);
  EXPECT_EQ(det->name(), "FID");
  DetectorOutput out = det->run(images, /*want_probs=*/true);
  EXPECT_CLOSE(out.features, io.get("features"), 1e-5);
  EXPECT_CLOSE(out.probs, io.get("probs_no_output_bias"), 1e-5);
  // The default call (without no_output_bias) differs, so the flag really reaches the module.
  EXPECT_GT(test::rel_err(io.get("probs"), io.get("probs_no_output_bias")), 1e-4);
}

TEST(TorchScriptDetector, OneChannelImagesAreRepeatedToRgb) {
  auto det = load_detector(golden("fid/tiny_detector.pt"));
  at::Tensor gray = at::randint(0, 256, {3, 1, 32, 32}, at::kLong).to(at::kByte);
  DetectorOutput a = det->run(gray, false), b = det->run(gray.repeat({1, 3, 1, 1}), false);
  EXPECT_TRUE(at::equal(a.features, b.features));
  EXPECT_FALSE(a.probs.defined());
}

TEST(TorchScriptDetector, BadFilesAreOneLineErrors) {
  expect_error([] { load_detector(""); }, {"--detector", "inception-2015-12-05.pt", "https://"});
  const std::string text = temp_path("not_torchscript.pt");
  std::ofstream(text) << "PK this is not a zip";
  expect_error([&] { load_detector(text); }, {text, "TorchScript"});
  expect_error([&] { load_detector(temp_path("missing.pt")); }, {"missing.pt", "no such file"});
  // A real TorchScript module whose forward does not take EDM's keyword call.
  torch::jit::Module m("WrongCall");
  m.define("def forward(self, x):\n  return x\n");
  const std::string wrong = temp_path("wrong_call.pt");
  m.save(wrong);
  expect_error([&] { load_detector(wrong); }, {wrong, "return_features"});
  // A safetensors file that is not a classifier.
  expect_error([] { load_detector(golden("ddpmpp_uncond_weights.safetensors")); },
               {"ddpmpp_uncond_weights.safetensors", "not a pidistill classifier"});
}

ClassifierConfig tiny_config() {
  ClassifierConfig c;
  c.widths = {4, 8};
  c.blocks = {1, 1};
  c.resolution = 8;
  c.num_classes = 2;
  return c;
}

TEST(Classifier, FileRoundTripAndDetector) {
  torch::manual_seed(3);
  Classifier net(tiny_config());
  net.eval();
  const std::string path = temp_path("clf.safetensors");
  save_classifier(path, net, {{"test_accuracy", "0.5"}});
  auto det = load_detector(path);
  EXPECT_EQ(det->name(), "FD-FMNIST");
  EXPECT_EQ(det->feature_dim(), 8);
  at::Tensor images = at::randint(0, 256, {5, 1, 8, 8}, at::kLong).to(at::kByte);
  DetectorOutput out = det->run(images, true);
  torch::NoGradGuard no_grad;
  at::Tensor ref = net.features(classifier_input(images, net.config, "test"));
  EXPECT_TRUE(at::equal(out.features, ref));
  EXPECT_CLOSE(out.probs.sum(1), at::ones({5}), 1e-6);
  // 6x6 images are centred in the 8x8 frame with black; 7x7 cannot be.
  at::Tensor small = at::full({1, 1, 6, 6}, 255, at::kByte);
  at::Tensor x = classifier_input(small, net.config, "test");
  EXPECT_EQ(x[0][0][0][0].item<float>(), -1.f);
  EXPECT_EQ(x[0][0][1][1].item<float>(), 1.f);
  expect_error(
      [&] {
        classifier_input(at::zeros({1, 1, 7, 7}, at::kByte), net.config, "in.png");
      },
      {"in.png", "8x8"});
  expect_error(
      [&] {
        classifier_input(at::zeros({1, 3, 8, 8}, at::kByte), net.config, "in.png");
      },
      {"in.png", "1-channel"});
}

// A classifier file whose config asks for 64 convolutions of 4096 channels (38 GB) but holds no tensors: refused
// before the network is built.
TEST(Classifier, ConfigAskingForMoreThanTheFileHoldsIsRefusedBeforeBuilding) {
  const std::string path = temp_path("clf_config_only.safetensors");
  write_safetensors(path, {},
                    {{"pidistill_classifier", "1"},
                     {"config", R"({"channels":1,"resolution":32,"num_classes":10,"widths":[4096,4096,4096,4096,4096,4096,4096,4096],"blocks":[8,8,8,8,8,8,8,8]})"}});
  expect_error([&] { load_classifier(path); }, {path, "classifier config describes", "hold only 0"});
}

TEST(Classifier, LearnsASeparableToySet) {
  // Class 1 has a bright left half, class 0 a bright right half: any working trainer separates them.
  const int64_t n = 256;
  at::Tensor labels = at::arange(n, at::kLong) % 2;
  at::Tensor images = at::zeros({n, 1, 8, 8}, at::kByte);
  images.index_put_({labels == 1, at::indexing::Slice(), at::indexing::Slice(), at::indexing::Slice(0, 4)},
                    200);
  images.index_put_({labels == 0, at::indexing::Slice(), at::indexing::Slice(), at::indexing::Slice(4, 8)},
                    200);
  ClassifierTrainOptions o;
  o.config = tiny_config();
  o.epochs = 3;
  o.batch = 32;
  o.shift = 0;
  o.xflip = false;  // a flip would swap the classes
  o.out = temp_path("toy.safetensors");
  ClassifierTrainResult r = train_classifier(o, images, labels, images, labels);
  EXPECT_GE(r.test_accuracy, 0.99);
  auto net = load_classifier(o.out);
  EXPECT_GE(classifier_accuracy(*net, images, labels), 0.99);
  TensorFile f = read_safetensors(o.out);
  EXPECT_EQ(f.meta("epochs"), "3");
}

// Features = the mean pixel of each channel plus a constant offset: easy to check against by hand.
struct MeanDetector : FeatureDetector {
  std::string name() const override { return "mean"; }
  std::string file() const override { return "mean-detector"; }
  int64_t feature_dim() const override { return 2; }
  DetectorOutput run(const at::Tensor& images, bool want_probs) override {
    at::Tensor m = images.to(at::kFloat).mean({1, 2, 3}).unsqueeze(1);  // [N, 1]
    DetectorOutput out;
    out.features = at::cat({m, m * m / 255.f}, 1);
    if (want_probs) out.probs = at::softmax(out.features, 1);
    return out;
  }
};

TEST(MeasureImages, EqualsDirectStatisticsAndKeepsFeatures) {
  MeanDetector det;
  at::Tensor images = at::randint(0, 256, {37, 1, 4, 4}, at::kLong).to(at::kByte);
  MeasureOptions o;
  o.batch = 10;
  o.keep_features = 15;
  ImageSetMeasure m = measure_images(
      det, 37, [&](int64_t b, int64_t e) { return images.slice(0, b, e); }, o);
  at::Tensor f = det.run(images, false).features.to(at::kDouble);
  EXPECT_CLOSE(m.stats.mu, f.mean(0), 1e-12);
  at::Tensor centred = f - f.mean(0);
  EXPECT_CLOSE(m.stats.sigma, centred.t().matmul(centred) / 36.0, 1e-10);
  EXPECT_EQ(m.stats.count, 37);
  EXPECT_EQ(m.features.size(0), 15);
  EXPECT_EQ(m.probs.size(0), 37);

  const std::string path = temp_path("ref.npz");
  write_reference(path, m);
  Reference r = read_reference(path, 2);
  EXPECT_EQ(r.stats.count, 37);
  EXPECT_TRUE(at::equal(r.features, m.features));
  MetricValues v = compare_to_reference(m, r, "self");
  EXPECT_NEAR(v.fd, 0, 1e-9);
  EXPECT_TRUE(v.has_pr);
  EXPECT_EQ(v.pr.precision, 1.0);
  EXPECT_EQ(v.pr.recall, 1.0);
  expect_error([&] { read_reference(path, 2048); }, {path, "2 features", "2048"});
  expect_error(
      [&] {
        measure_images(
            det, 1, [&](int64_t b, int64_t e) { return images.slice(0, b, e); }, o);
      },
      {"at least two images"});
}

}  // namespace
