// --index-sampling: uniform draws are the paper's (sample_indices), loss-driven draws follow p(i) =
// 0.5/n + 0.5 w_b/n_b, and their importance weights keep the expected loss that of uniform draws.
#include "pidistill/pid/index_sampling.h"
#include "pidistill/pid/loss_bins.h"
#include "test_common.h"

#include <ATen/ATen.h>

using namespace pidistill;
using pidistill::test::expect_error;

TEST(PidIndexSampling, UniformIsThePapersDraw) {
  PidGrid grid;
  IndexSampler sampler;
  at::Generator a = at::detail::createCPUGenerator(3), b = at::detail::createCPUGenerator(3);
  IndexDraw d = sampler.draw(64, grid, a);
  EXPECT_TRUE(d.indices.equal(sample_indices(64, grid, b)));
  EXPECT_FALSE(d.weights.defined());
}

TEST(PidIndexSampling, BinsOfTheGrid) {
  EXPECT_EQ(loss_bin(0, 250), 0);
  EXPECT_EQ(loss_bin(31, 250), 0);
  EXPECT_EQ(loss_bin(32, 250), 1);  // 8 * 32 / 250 = 1.02
  EXPECT_EQ(loss_bin(249, 250), 7);
  LossBinTally tally;
  tally.add(at::tensor({0, 1, 249}, at::kLong), at::tensor({1.0, 3.0, 5.0}, at::kDouble), 250);
  EXPECT_EQ(tally.count[0], 2);
  EXPECT_EQ(tally.count[7], 1);
  EXPECT_DOUBLE_EQ(tally.mean(0), 2.0);
  EXPECT_DOUBLE_EQ(tally.mean(7), 5.0);
}

TEST(PidIndexSampling, LossProbabilitiesAndUnbiasedWeights) {
  IndexSampler sampler;
  sampler.mode = IndexSampling::Loss;
  for (int b = 0; b < kLossBins; ++b) sampler.loss_ema[b] = b + 1.0;  // later bins (small t) lose more
  for (bool backward : {true, false}) {
    for (int64_t N : {2, 5, 10, 250}) {
      PidGrid grid;
      grid.N = N;
      grid.last_index_backward = backward;
      if (N == 2 && !backward) continue;                 // a single index
      const at::Tensor p = sampler.probabilities(grid);  // [n]
      const int64_t n = backward ? N : N - 1;
      ASSERT_EQ(p.size(0), n);
      EXPECT_NEAR(p.sum().item<double>(), 1.0, 1e-12) << N;
      EXPECT_GE(p.min().item<double>(), 0.5 / n - 1e-15);  // half of it stays uniform
    }
  }
  // Within a bin p is constant, and a bin with the larger loss average gets the larger probability.
  PidGrid grid;
  const at::Tensor p = sampler.probabilities(grid);
  EXPECT_DOUBLE_EQ(p[0].item<double>(), p[31].item<double>());
  EXPECT_GT(p[249].item<double>(), p[0].item<double>());
}

TEST(PidIndexSampling, DrawsFollowTheProbabilities) {
  IndexSampler sampler;
  sampler.mode = IndexSampling::Loss;
  sampler.loss_ema = {1, 1, 1, 1, 1, 1, 1, 9};
  PidGrid grid;
  grid.N = 16;
  at::Generator gen = at::detail::createCPUGenerator(7);
  const int64_t draws = 200000;
  IndexDraw d = sampler.draw(draws, grid, gen);
  ASSERT_EQ(d.indices.size(0), draws);
  EXPECT_GE(d.indices.min().item<int64_t>(), 0);
  EXPECT_LE(d.indices.max().item<int64_t>(), 15);
  const at::Tensor freq = at::bincount(d.indices, {}, 16).to(at::kDouble) / double(draws);  // [16]
  EXPECT_CLOSE(freq, sampler.probabilities(grid), 0.03);
  // Weights are (1/n)/p(i): their mean is 1, and the favoured last bin is down-weighted.
  EXPECT_NEAR(d.weights.mean().item<double>(), 1.0, 0.01);
  EXPECT_LT(d.weights[d.indices.argmax()].item<double>(), 1.0);
  // E_p[(1/n)/p(i) f(i)] = mean_i f(i): the weighted objective is that of uniform draws.
  const at::Tensor f = at::arange(16, at::kDouble).square() + 1;  // [16]
  EXPECT_NEAR((d.weights * f.index_select(0, d.indices)).mean().item<double>() / f.mean().item<double>(), 1.0,
              0.01);
}

TEST(PidIndexSampling, EmaUpdateAndState) {
  IndexSampler sampler;
  sampler.mode = IndexSampling::Loss;
  LossBinTally step;
  step.add(at::tensor({0, 0}, at::kLong), at::tensor({3.0, 5.0}, at::kDouble), 250);
  sampler.update(step);
  EXPECT_DOUBLE_EQ(sampler.loss_ema[0], 0.99 * 1 + 0.01 * 4);
  EXPECT_DOUBLE_EQ(sampler.loss_ema[1], 1.0);  // no samples: unchanged
  IndexSampler restored;
  restored.mode = IndexSampling::Loss;
  restored.load_state(sampler.state(), "test");
  EXPECT_EQ(restored.loss_ema, sampler.loss_ema);
  expect_error([&] { restored.load_state(at::zeros({3}, at::kDouble), "ckpt.safetensors"); },
               {"ckpt.safetensors", "8"});
  expect_error([] { index_sampling_from_string("bogus"); }, {"--index-sampling", "uniform or loss"});
  // Uniform mode keeps no averages.
  IndexSampler uniform;
  uniform.update(step);
  EXPECT_DOUBLE_EQ(uniform.loss_ema[0], 1.0);
}
