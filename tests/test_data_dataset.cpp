// Dataset views (float range, one-hot labels), minibatch sampling and flips, and the real Fashion-MNIST if present.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <filesystem>

#include "pidistill/data/dataset.h"
#include "pidistill/data/minibatch.h"
#include "pidistill/util/error.h"

using namespace pidistill;

namespace {
Dataset tiny_dataset() {
  auto images = at::arange(0, 4 * 1 * 2 * 2, at::kLong).mul(17).remainder(256).to(at::kByte).view({4, 1, 2, 2});
  return Dataset(images, at::tensor(std::vector<int64_t>{0, 2, 1, 2}), /*label_dim=*/3, "tiny");
}
}  // namespace

TEST(Dataset, FloatRangeAndOneHot) {
  auto data = tiny_dataset();
  auto full = Dataset(at::tensor({0, 255}, at::kByte).view({2, 1, 1, 1}), at::Tensor(), 0, "extremes");
  auto x = full.images(at::tensor({int64_t(0), int64_t(1)}));
  EXPECT_EQ(x[0].item<float>(), -1.0f);
  EXPECT_EQ(x[1].item<float>(), 1.0f);
  auto y = data.labels(at::tensor({int64_t(1), int64_t(0)}));  // [2, 3]
  ASSERT_EQ(y.sizes(), (std::vector<int64_t>{2, 3}));
  EXPECT_TRUE(at::equal(y, at::tensor({0.f, 0.f, 1.f, 1.f, 0.f, 0.f}).view({2, 3})));
  EXPECT_THROW(full.labels(at::tensor({int64_t(0)})), Error);
  EXPECT_THROW(Dataset(at::zeros({2, 1, 2, 3}, at::kByte), at::Tensor(), 0, "nonsquare"), Error);
  EXPECT_THROW(Dataset(at::zeros({2, 1, 2, 2}, at::kByte), at::tensor(std::vector<int64_t>{0, 5}), 3, "badlabel"), Error);
}

TEST(Minibatch, SampleIndicesIsReproducibleAndUniform) {
  auto g1 = at::detail::createCPUGenerator(7), g2 = at::detail::createCPUGenerator(7);
  auto a = sample_indices(10, 20000, g1), b = sample_indices(10, 20000, g2);
  EXPECT_TRUE(at::equal(a, b));
  EXPECT_EQ(a.min().item<int64_t>(), 0);
  EXPECT_EQ(a.max().item<int64_t>(), 9);
  auto counts = at::bincount(a, {}, 10).to(at::kDouble) / 20000;
  EXPECT_LT((counts - 0.1).abs().max().item<double>(), 0.02);
  EXPECT_THROW(sample_indices(0, 4, g1), Error);
}

TEST(Minibatch, RandomXflipMirrorsSomeImages) {
  auto gen = at::detail::createCPUGenerator(3);
  auto x = at::arange(64 * 2 * 3, at::kFloat).view({64, 1, 2, 3});
  auto y = random_xflip(x, gen);
  int flipped = 0;
  for (int i = 0; i < 64; ++i) {
    bool same = at::equal(y[i], x[i]), mirrored = at::equal(y[i], x[i].flip({2}));
    EXPECT_TRUE(same != mirrored) << i;
    flipped += mirrored;
  }
  EXPECT_GT(flipped, 10);
  EXPECT_LT(flipped, 54);
  EXPECT_TRUE(at::equal(random_xflip(x, gen, /*p=*/0.0), x));
  EXPECT_TRUE(at::equal(random_xflip(x, gen, /*p=*/1.0), x.flip({3})));
}

TEST(RealData, FashionMnistTrainSet) {
  const std::string dir = "/usr/share/datasets/fashion-mnist";
  if (!std::filesystem::is_directory(dir)) GTEST_SKIP() << dir << " not present";
  DatasetOptions options;
  options.pad_to = 32;
  auto data = open_dataset(dir, options);
  EXPECT_EQ(data.size(), 60000);
  EXPECT_EQ(data.channels(), 1);
  EXPECT_EQ(data.resolution(), 32);
  EXPECT_EQ(data.label_dim(), 10);
  auto labels = data.raw_labels();
  EXPECT_EQ(labels.min().item<int64_t>(), 0);
  EXPECT_EQ(labels.max().item<int64_t>(), 9);
  EXPECT_EQ(at::bincount(labels).min().item<int64_t>(), 6000);  // Fashion-MNIST is balanced
  auto x = data.raw_images();
  EXPECT_EQ(x.slice(2, 0, 2).max().item<int>(), 0);
  EXPECT_GT(x.max().item<int>(), 200);
  auto unpadded = open_dataset(dir);
  EXPECT_EQ(unpadded.resolution(), 28);
}
