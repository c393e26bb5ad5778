// Reference-statistics npz files: round trip with and without `count`, and the errors for malformed files.
#include "pidistill/io/npz.h"
#include "pidistill/metrics/frechet.h"
#include "test_common.h"

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <string>

namespace fs = std::filesystem;
using namespace pidistill;
using pidistill::test::expect_error;

namespace {

std::string temp_dir() {
  fs::path dir = fs::temp_directory_path() / ("pidistill_test_stats_npz_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  return dir.string();
}

struct TempCleanup : ::testing::Environment {
  void TearDown() override { fs::remove_all(temp_dir()); }
};
const auto* const cleanup = ::testing::AddGlobalTestEnvironment(new TempCleanup);

}  // namespace

TEST(StatsNpz, RoundTripWithAndWithoutCount) {
  const std::string path = temp_dir() + "/stats.npz";
  FeatureStats s{at::arange(3, at::kDouble), at::eye(3, at::kDouble) * 2, 12345};
  write_stats_npz(path, s);
  FeatureStats r = read_stats_npz(path);
  EXPECT_TRUE(at::equal(r.mu, s.mu));
  EXPECT_TRUE(at::equal(r.sigma, s.sigma));
  EXPECT_EQ(r.count, 12345);
  const NamedTensors arrays = read_npz(path);
  ASSERT_EQ(arrays.size(), 3u);
  EXPECT_EQ(arrays[2].first, "count");
  EXPECT_EQ(arrays[2].second.dim(), 0);
  EXPECT_EQ(arrays[2].second.scalar_type(), at::kLong);

  s.count = 0;  // unknown: no `count` array, as EDM's files
  write_stats_npz(path, s);
  EXPECT_EQ(read_npz(path).size(), 2u);
  EXPECT_EQ(read_stats_npz(path).count, 0);

  // float32 statistics (a foreign writer) come back as float64.
  write_npz(path, {{"mu", at::ones({2}, at::kFloat)}, {"sigma", at::eye(2, at::kFloat)}});
  EXPECT_EQ(read_stats_npz(path).sigma.scalar_type(), at::kDouble);
}

TEST(StatsNpz, MalformedFiles) {
  const std::string path = temp_dir() + "/bad.npz";
  auto expect_bad = [&](const NamedTensors& arrays, const std::string& key, const std::string& problem) {
    write_npz(path, arrays);
    expect_error([&] { read_stats_npz(path); }, {path, key, problem});
  };
  const at::Tensor mu = at::zeros({2}, at::kDouble), sigma = at::eye(2, at::kDouble);
  expect_bad({{"sigma", sigma}}, "'mu'", "fid.py ref");
  expect_bad({{"mu", mu}}, "'sigma'", "mu and sigma");
  expect_bad({{"mu", mu.view({2, 1})}, {"sigma", sigma}}, "'mu'", "1-D");
  expect_bad({{"mu", mu.to(at::kLong)}, {"sigma", sigma}}, "'mu'", "floating");
  expect_bad({{"mu", mu}, {"sigma", at::eye(3, at::kDouble)}}, "'sigma'", "[3, 3]");
  expect_bad({{"mu", mu}, {"sigma", sigma}, {"count", at::ones({2})}}, "'count'", "integer scalar");
  // NaN or inf used to reach the Frechet distance, where LAPACK failed with an anonymous message.
  const double nan = std::nan(""), inf = HUGE_VAL;
  expect_bad({{"mu", at::full({2}, nan, at::kDouble)}, {"sigma", sigma}}, "'mu'", "NaN or inf");
  expect_bad({{"mu", mu}, {"sigma", at::full({2, 2}, inf, at::kDouble)}}, "'sigma'", "NaN or inf");
  const FeatureStats mismatched{at::zeros({2}), at::zeros({3, 3})};
  expect_error([&] { write_stats_npz(path, mismatched); }, {path, "[3, 3]"});
}

TEST(StatsNpz, FrechetAndAccumulatorErrors) {
  FeatureStats a{at::zeros({2}, at::kDouble), at::eye(2, at::kDouble)};
  FeatureStats b{at::zeros({3}, at::kDouble), at::eye(3, at::kDouble)};
  expect_error([&] { frechet_distance(a, b, "run/fid"); }, {"run/fid", "2 vs 3"});
  StatsAccumulator acc(4);
  expect_error([&] { acc.add(at::zeros({5, 3})); }, {"StatsAccumulator", "[5, 3]", "[N, 4]"});
  acc.add(at::zeros({1, 4}));
  expect_error([&] { acc.stats(); }, {"StatsAccumulator", "at least two"});
  // Identical Gaussians are at distance 0, and shifting the mean by v adds |v|^2.
  EXPECT_NEAR(frechet_distance(a, a), 0.0, 1e-12);
  // Covariances LAPACK cannot decompose (statistics made in memory, not read from a file) name the
  // comparison.
  FeatureStats inf{at::zeros({4}, at::kDouble), at::full({4, 4}, HUGE_VAL, at::kDouble)};
  expect_error([&] { frechet_distance(inf, inf, "run/fid"); }, {"run/fid", "cannot be decomposed"});
  FeatureStats c{at::tensor({3.0, 4.0}, at::kDouble), at::eye(2, at::kDouble)};
  EXPECT_NEAR(frechet_distance(a, c), 25.0, 1e-12);
}
