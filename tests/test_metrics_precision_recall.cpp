// Improved precision/recall: limiting cases, a 1-D case worked by hand, batch invariance, errors.
#include "pidistill/metrics/precision_recall.h"
#include "test_common.h"

using namespace pidistill;
using pidistill::test::expect_error;

namespace {

at::Tensor points(int64_t n, int64_t d, uint64_t seed) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  return at::randn({n, d}, gen, at::kFloat);
}

at::Tensor column(std::initializer_list<float> v) { return at::tensor(std::vector<float>(v)).unsqueeze(1); }

}  // namespace

TEST(PrecisionRecall, IdenticalAndFarApartSets) {
  const at::Tensor x = points(200, 16, 1);
  PrecisionRecall pr = precision_recall(x, x.clone(), /*k=*/3, /*batch=*/64);
  EXPECT_EQ(pr.precision, 1.0);
  EXPECT_EQ(pr.recall, 1.0);
  pr = precision_recall(x, points(150, 16, 2) + 1000, /*k=*/3, /*batch=*/64);
  EXPECT_EQ(pr.precision, 0.0);
  EXPECT_EQ(pr.recall, 0.0);
}

TEST(PrecisionRecall, OneDimensionalByHand) {
  // real {0, 1, 2, 10}, k = 1: nearest-neighbour radii 1, 1, 1, 8.
  // fake {0.5, 2.9, 6, 20}: 0.5 within 1 of 0 (and 1); 2.9 within 8 of 10; 6 within 8 of 10 (|6-10| = 4);
  // 20 beyond every ball (|20-10| = 10 > 8) -> precision 3/4.
  // fake radii, k = 1: 0.5 -> 2.4, 2.9 -> 2.4, 6 -> 3.1, 20 -> 14.
  // real 0: |0-0.5| = 0.5 <= 2.4 yes; 1: 0.5 <= 2.4 yes; 2: |2-2.9| = 0.9 <= 2.4 yes; 10: |10-6| = 4 > 3.1,
  // |10-20| = 10 <= 14 yes -> recall 4/4.
  const at::Tensor real = column({0, 1, 2, 10}), fake = column({0.5f, 2.9f, 6, 20});
  for (int64_t batch : {1, 3, 1024}) {
    const PrecisionRecall pr = precision_recall(real, fake, /*k=*/1, batch);
    EXPECT_EQ(pr.precision, 0.75) << "batch " << batch;
    EXPECT_EQ(pr.recall, 1.0) << "batch " << batch;
  }
  // k = 2: real radii 2, 1, 2, 9; fake 20 is still out (10 > 9) and the rest in: precision 3/4 again.
  // fake radii: 0.5 -> 5.5, 2.9 -> 3.1, 6 -> 5.5, 20 -> 17.1; every real point is within one: recall 1.
  const PrecisionRecall pr2 = precision_recall(real, fake, /*k=*/2);
  EXPECT_EQ(pr2.precision, 0.75);
  EXPECT_EQ(pr2.recall, 1.0);
  // Swapping the sets swaps precision and recall.
  const PrecisionRecall swapped = precision_recall(fake, real, /*k=*/1);
  EXPECT_EQ(swapped.precision, 1.0);
  EXPECT_EQ(swapped.recall, 0.75);
}

TEST(PrecisionRecall, BatchSizeInvariance) {
  const at::Tensor real = points(300, 8, 3), fake = points(250, 8, 4) * 1.3 + 0.4;
  const PrecisionRecall ref = precision_recall(real, fake, /*k=*/3, /*batch=*/1000);
  std::cout << "[ value ] precision " << ref.precision << ", recall " << ref.recall << "\n";
  EXPECT_GT(ref.precision, 0.0);
  EXPECT_LT(ref.precision, 1.0);
  EXPECT_GT(ref.recall, 0.0);
  EXPECT_LT(ref.recall, 1.0);
  for (int64_t batch : {1, 7, 64, 299}) {
    const PrecisionRecall pr = precision_recall(real, fake, /*k=*/3, batch);
    EXPECT_EQ(pr.precision, ref.precision) << "batch " << batch;
    EXPECT_EQ(pr.recall, ref.recall) << "batch " << batch;
  }
  // float64 input is computed in float32 as well.
  const PrecisionRecall pr = precision_recall(real.to(at::kDouble), fake.to(at::kDouble), 3, 100);
  EXPECT_EQ(pr.precision, ref.precision);
}

TEST(PrecisionRecall, Errors) {
  const at::Tensor x = points(10, 4, 5);
  expect_error([&] { precision_recall(x.slice(0, 0, 3), x, /*k=*/3); },
               {"precision_recall", "real has 3 rows", "4"});
  expect_error([&] { precision_recall(x, x.slice(0, 0, 2), /*k=*/3); }, {"fake has 2 rows"});
  expect_error([&] { precision_recall(x, points(10, 5, 6)); }, {"feature dimensions differ", "4", "5"});
  expect_error([&] { precision_recall(x, x, /*k=*/0); }, {"k = 0"});
  expect_error([&] { precision_recall(x.flatten(), x); }, {"[N, D]"});
}
