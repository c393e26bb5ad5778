// FID and Inception Score against fid/ golden numbers (scipy sqrtm, np.cov, StyleGAN3's inception_score.py),
// the 2048-dim reference npz, and batching invariance of the statistics accumulator.
#include "pidistill/metrics/frechet.h"
#include "pidistill/metrics/inception_score.h"
#include "test_common.h"

#include <algorithm>
#include <cmath>
#include <string>

using namespace pidistill;
using pidistill::test::golden;
using pidistill::test::load_golden;

namespace {

double scalar(const TensorFile& f, const std::string& name) { return f.get(name).item<double>(); }

// |x - ref| / |ref|, printed so a passing run shows its margin.
double rel(const std::string& what, double x, double ref, double tol) {
  const double e = std::abs(x - ref) / std::abs(ref);
  std::cout << "[ rel err ] " << what << ": " << x << " vs " << ref << ": " << e << " (tol " << tol << ")\n";
  EXPECT_LE(e, tol) << what;
  return e;
}

FeatureStats accumulate(const at::Tensor& features, std::initializer_list<int64_t> batch_rows) {
  StatsAccumulator acc(features.size(1));
  int64_t start = 0;
  for (int64_t rows : batch_rows) {
    acc.add(features.slice(0, start, start + rows));
    start += rows;
  }
  acc.add(features.slice(0, start));  // the rest
  EXPECT_EQ(acc.count(), features.size(0));
  return acc.stats();
}

}  // namespace

TEST(Fid, GoldenCasesFromFeatures) {
  const TensorFile f = load_golden("fid/fd_cases.safetensors");
  double worst = 0;
  for (const std::string c : {"case0", "case1", "case2"}) {
    std::cout << "[ case ] " << c << "\n";
    FeatureStats a = accumulate(f.get(c + ".features_a"), {});
    FeatureStats b = accumulate(f.get(c + ".features_b"), {});
    EXPECT_CLOSE(a.mu, f.get(c + ".mu_a"), 1e-10);
    EXPECT_CLOSE(a.sigma, f.get(c + ".sigma_a"), 1e-10);
    EXPECT_CLOSE(b.mu, f.get(c + ".mu_b"), 1e-10);
    EXPECT_CLOSE(b.sigma, f.get(c + ".sigma_b"), 1e-10);
    worst = std::max(worst, rel(c + " fd", frechet_distance(a, b, c), scalar(f, c + ".fd"), 1e-6));
    const double self = frechet_distance(a, a, c);
    std::cout << "[ abs err ] " << c << " fd_self: " << self << " (golden " << scalar(f, c + ".fd_self")
              << ", tol 1e-8)\n";
    EXPECT_LE(std::abs(self), 1e-8);
  }
  std::cout << "[ worst ] fd rel err over cases: " << worst << "\n";
}

TEST(Fid, SingularCovariances) {
  const TensorFile f = load_golden("fid/fd_cases.safetensors");
  FeatureStats a{f.get("singular.mu_a"), f.get("singular.sigma_a")};
  FeatureStats b{f.get("singular.mu_b"), f.get("singular.sigma_b")};
  rel("singular fd", frechet_distance(a, b), scalar(f, "singular.fd"), 1e-6);
  rel("singular fd (b, a)", frechet_distance(b, a), scalar(f, "singular.fd"), 1e-6);
}

TEST(Fid, ReferenceNpz2048) {
  const TensorFile f = load_golden("fid/fd_cases.safetensors");
  const FeatureStats b = read_stats_npz(golden("fid/ref_stats_2048.npz"));
  ASSERT_EQ(b.mu.sizes(), at::IntArrayRef({2048}));
  EXPECT_EQ(b.count, 0);  // EDM's files carry no count
  FeatureStats a{0.5 * b.mu + 0.1, 0.8 * b.sigma + 0.05 * at::eye(2048, at::kDouble)};
  rel("npz2048 fd", frechet_distance(a, b, "npz2048"), scalar(f, "npz2048.fd"), 1e-6);
  // Why 1e-6 absolute: the trace terms are ~1e3 each, so float64 rounding of their difference is ~1e-10 and
  // the square roots of near-zero eigenvalues of a PSD matrix add up to ~1e-7 at worst.
  const double self = frechet_distance(b, b, "npz2048");
  std::cout << "[ abs err ] npz2048 fd_self: " << self << " (golden " << scalar(f, "npz2048.fd_self")
            << ", tol 1e-6)\n";
  EXPECT_LE(std::abs(self), 1e-6);
}

TEST(Fid, BatchingInvariance) {
  const TensorFile f = load_golden("fid/fd_cases.safetensors");
  const at::Tensor x = f.get("case2.features_a");  // [1000, 256]
  const FeatureStats one = accumulate(x, {});
  const FeatureStats three = accumulate(x, {17, 650});  // 17, 650 and 333 rows
  EXPECT_CLOSE(three.mu, one.mu, 1e-13);
  EXPECT_CLOSE(three.sigma, one.sigma, 1e-13);
  EXPECT_EQ(three.count, one.count);
  // float32 input goes through the same float64 sums.
  EXPECT_CLOSE(accumulate(x.to(at::kFloat), {400}).sigma, one.sigma, 1e-6);
}

TEST(InceptionScore, Golden) {
  const TensorFile f = load_golden("fid/inception_score_case.safetensors");
  const ScoreMeanStd s = inception_score(f.get("probs"), /*splits=*/10);
  rel("is_mean", s.mean, scalar(f, "is_mean"), 1e-6);
  rel("is_std", s.std, scalar(f, "is_std"), 1e-6);
}

TEST(InceptionScore, ZeroProbabilitiesAndUnevenSplits) {
  // One-hot rows over 4 classes, evenly spread: p log p = 0 everywhere, the score is exactly the class count.
  const at::Tensor one_hot = at::eye(4, at::kDouble).repeat({5, 1});  // [20, 4]
  ScoreMeanStd s = inception_score(one_hot, /*splits=*/1);
  EXPECT_NEAR(s.mean, 4.0, 1e-12);
  EXPECT_EQ(s.std, 0.0);
  // 20 rows in 3 splits: rows [0, 6), [6, 13), [13, 20), as StyleGAN3 slices; no NaN from the zero entries.
  s = inception_score(one_hot, /*splits=*/3);
  std::cout << "[ value ] one-hot IS over 3 splits: " << s.mean << " +- " << s.std << "\n";
  EXPECT_TRUE(std::isfinite(s.mean) && std::isfinite(s.std));
  EXPECT_GT(s.mean, 3.0);
  EXPECT_LE(s.mean, 4.0);
  // Identical rows: no information, score 1.
  s = inception_score(at::full({10, 7}, 1.0 / 7, at::kDouble), /*splits=*/2);
  EXPECT_NEAR(s.mean, 1.0, 1e-12);
  pidistill::test::expect_error([&] { inception_score(one_hot, 21); },
                                {"inception_score", "20 rows", "21 splits"});
}
