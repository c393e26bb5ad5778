// The bundled Fashion-MNIST classifier behind FD-FMNIST: it loads from a fresh clone, reaches the test accuracy its
// file records (at least 92%), and its FD-FMNIST separates real images from the teacher's few-step samples.
#include "pidistill/data/dataset.h"
#include "pidistill/io/safetensors.h"
#include "pidistill/metrics/classifier.h"
#include "pidistill/metrics/evaluate.h"
#include "test_cli_util.h"

#include <ATen/ATen.h>

#include <filesystem>
#include <iostream>

namespace pidistill::test {
namespace {

const std::string kClassifier = std::string(PIDISTILL_SOURCE_DIR) + "/models/fmnist-classifier.safetensors";
const std::string kFmnist = "/usr/share/datasets/fashion-mnist";

TEST(BundledClassifier, TestAccuracyAsRecorded) {
  if (!std::filesystem::exists(kFmnist + "/t10k-images-idx3-ubyte.gz")) GTEST_SKIP() << "dataset-fashion-mnist absent";
  DatasetOptions o;
  o.split = "t10k";
  Dataset test = open_dataset(kFmnist, o);
  auto net = load_classifier(kClassifier);
  const double accuracy = classifier_accuracy(*net, test.raw_images(), test.raw_labels());
  const double recorded = std::stod(read_safetensors(kClassifier).meta("test_accuracy"));
  std::cout << "test accuracy " << accuracy << " (file says " << recorded << ")\n";
  EXPECT_GE(accuracy, 0.92);
  EXPECT_NEAR(accuracy, recorded, 1e-4);
}

TEST(BundledClassifier, FdSeparatesRealFromDegradedImages) {
  if (!std::filesystem::exists(kFmnist + "/t10k-images-idx3-ubyte.gz")) GTEST_SKIP() << "dataset-fashion-mnist absent";
  DatasetOptions o;
  o.split = "t10k";
  o.pad_to = 32;
  Dataset test = open_dataset(kFmnist, o);
  auto det = load_detector(kClassifier);
  const at::Tensor& all = test.raw_images();  // [10000, 1, 32, 32]
  auto measure = [&](const at::Tensor& images) {
    MeasureOptions m;
    m.keep_features = 0;
    return measure_images(*det, images.size(0), [&](int64_t b, int64_t e) { return images.slice(0, b, e); }, m);
  };
  // Two disjoint halves of the test set are close; the same images blurred (a 3x3 box filter) are far.
  ImageSetMeasure a = measure(all.slice(0, 0, 1000)), b = measure(all.slice(0, 5000, 6000));
  at::Tensor blurred = at::avg_pool2d(all.slice(0, 5000, 6000).to(at::kFloat), 3, 1, 1).round().to(at::kByte);
  ImageSetMeasure c = measure(blurred);
  const double fd_real = frechet_distance(a.stats, b.stats), fd_blur = frechet_distance(a.stats, c.stats);
  std::cout << "FD-FMNIST real/real " << fd_real << ", real/blurred " << fd_blur << "\n";
  EXPECT_GT(fd_blur, 5 * fd_real);
}

TEST(BundledClassifier, InspectDescribesIt) {
  CliResult r = run_cli("inspect " + test::quoted(kClassifier));
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("model_type: Classifier"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("parameters: 278890"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("test_accuracy: 0.928800"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace pidistill::test
