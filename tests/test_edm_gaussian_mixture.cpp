// The Gaussian-mixture teacher: Tweedie's formula against the log density, limits, exact sampling, and
// EDM's Heun sampler recovering the component shares.
#include "pidistill/edm/gaussian_mixture.h"
#include "pidistill/edm/sampler.h"
#include "pidistill/util/error.h"
#include "test_common.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

using namespace pidistill;

namespace {

// Three components in 3-D with different diagonal stds and unequal weights.
GaussianMixture mixture3d() {
  at::Tensor w = at::tensor({0.5, 0.3, 0.2}, at::kDouble);
  at::Tensor mu = at::tensor({1.0, 0.0, -0.5, -1.0, 1.0, 0.5, 0.0, -1.5, 1.0}, at::kDouble).view({3, 3});
  at::Tensor s = at::tensor({0.2, 0.3, 0.1, 0.4, 0.15, 0.25, 0.3, 0.3, 0.3}, at::kDouble).view({3, 3});
  return GaussianMixture(w, mu, s);
}

// A 2-D mixture of four well separated modes, the kind the PID analytic test uses.
GaussianMixture mixture2d() {
  at::Tensor w = at::tensor({0.4, 0.3, 0.2, 0.1}, at::kDouble);
  at::Tensor mu = at::tensor({1.5, 1.5, -1.5, 1.5, -1.5, -1.5, 1.5, -1.5}, at::kDouble).view({4, 2});
  return GaussianMixture(w, mu, at::full({4}, 0.2, at::kDouble));
}

}  // namespace

TEST(GaussianMixture, TweedieMatchesFiniteDifferenceOfLogDensity) {
  // D(x, sigma) = x + sigma^2 grad_x log p_sigma(x), grad by central differences of log_density.
  GaussianMixture gm = mixture3d();
  auto gen = at::detail::createCPUGenerator(7);
  for (double sigma : {0.05, 0.5, 3.0}) {
    at::Tensor x = gm.sample(16, gen) + sigma * at::randn({16, 3}, gen, at::kDouble);  // [16, 3]
    at::Tensor s = at::full({}, sigma, at::kDouble);
    at::Tensor grad = at::zeros_like(x);
    const double h = 1e-5 * std::max(sigma, 0.1);
    for (int d = 0; d < 3; ++d) {
      at::Tensor e = at::zeros_like(x);
      e.select(1, d).fill_(h);
      grad.select(1, d).copy_((gm.log_density(x + e, s) - gm.log_density(x - e, s)) / (2 * h));
    }
    at::Tensor tweedie = x + sigma * sigma * grad;
    SCOPED_TRACE("sigma " + std::to_string(sigma));
    EXPECT_CLOSE(gm.denoise(x, s), tweedie, 1e-7);
    // The same through autograd, tighter.
    at::Tensor xg = x.clone().requires_grad_(true);
    gm.log_density(xg, s).sum().backward();
    at::Tensor g = xg.grad();
    EXPECT_CLOSE(gm.denoise(x, s), x + sigma * sigma * g, 1e-12);
  }
}

TEST(GaussianMixture, LimitsAndShapes) {
  GaussianMixture gm = mixture3d();
  auto gen = at::detail::createCPUGenerator(3);
  at::Tensor x = gm.sample(8, gen);
  // sigma -> 0: nothing to remove. sigma -> inf: the data mean.
  EXPECT_CLOSE(gm.denoise(x, at::full({8}, 1e-6, at::kDouble)), x, 1e-9);
  at::Tensor mean = (gm.weights.unsqueeze(1) * gm.means).sum(0).expand({8, 3});
  EXPECT_CLOSE(gm.denoise(x, at::full({}, 1e6, at::kDouble)), mean, 1e-9);
  // Per-row sigma [B, 1] and float32 input keep x's shape and dtype.
  at::Tensor xf = x.to(at::kFloat);
  at::Tensor d = gm.denoise(xf, at::full({8, 1}, 0.3, at::kFloat));
  EXPECT_EQ(d.scalar_type(), at::kFloat);
  EXPECT_CLOSE(d, gm.denoise(x, at::full({}, 0.3, at::kDouble)), 1e-5);
  // Image-shaped data: means [K, C, H, W].
  GaussianMixture img(at::tensor({0.5, 0.5}, at::kDouble), at::randn({2, 3, 4, 4}, gen, at::kDouble),
                      at::tensor({0.5, 1.0}, at::kDouble));
  at::Tensor xi = img.sample(5, gen);
  ASSERT_EQ(xi.sizes(), (at::IntArrayRef{5, 3, 4, 4}));
  EXPECT_EQ(img.denoise(xi, at::full({5, 1, 1, 1}, 2.0, at::kDouble)).sizes(), xi.sizes());
  // Responsibilities are a distribution per row.
  EXPECT_CLOSE(gm.responsibilities(x, at::full({}, 1.0, at::kDouble)).sum(1), at::ones({8}, at::kDouble), 1e-14);
}

TEST(GaussianMixture, BadInputIsAnError) {
  at::Tensor w = at::tensor({0.5, 0.5}, at::kDouble), mu = at::zeros({2, 2}, at::kDouble);
  EXPECT_THROW(GaussianMixture(w, at::zeros({3, 2}), at::ones({2})), Error);
  EXPECT_THROW(GaussianMixture(w, mu, at::zeros({2})), Error);
  EXPECT_THROW(GaussianMixture(at::tensor({-1.0, 2.0}), mu, at::ones({2})), Error);
  EXPECT_THROW(GaussianMixture(w, mu, at::ones({2, 3})), Error);
  GaussianMixture gm(w, mu, at::ones({2}));
  EXPECT_THROW(gm.denoise(at::zeros({4, 3}), at::ones({4})), Error);
  EXPECT_THROW(gm.denoise(at::zeros({4, 2}), at::ones({3})), Error);
}

TEST(GaussianMixture, ExactSamplesHaveTheMixtureShares) {
  GaussianMixture gm = mixture2d();
  auto gen = at::detail::createCPUGenerator(11);
  const int64_t n = 20000;
  at::Tensor k = gm.component_of(gm.sample(n, gen));
  at::Tensor shares = at::bincount(k, {}, 4).to(at::kDouble) / n;
  std::cout << "[ exact sample shares ] " << shares.unsqueeze(0) << "\n";
  EXPECT_CLOSE(shares, gm.weights, 0.03);
  // Same seed, same samples.
  auto g1 = at::detail::createCPUGenerator(5), g2 = at::detail::createCPUGenerator(5);
  EXPECT_TRUE(at::equal(gm.sample(10, g1), gm.sample(10, g2)));
}

TEST(GaussianMixture, HeunSamplerRecoversComponentShares) {
  // The PF-ODE from sigma_max = 80 with the exact denoiser lands in each mode at the mixture's rate.
  GaussianMixture gm = mixture2d();
  auto gen = at::detail::createCPUGenerator(1);
  const int64_t n = 4000;
  at::Tensor latents = at::randn({n, 2}, gen, at::kDouble);  // [n, 2]
  SamplerConfig config;
  config.num_steps = 32;
  at::Tensor x = heun_sample(gm, latents, {}, config);
  at::Tensor k = gm.component_of(x);
  at::Tensor shares = at::bincount(k, {}, 4).to(at::kDouble) / n;
  std::cout << "[ heun sample shares (weights 0.4 0.3 0.2 0.1) ] " << shares.unsqueeze(0) << "\n";
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(shares[i].item<double>(), gm.weights[i].item<double>(), 0.03) << i;
  // Samples end near a mode: distance to the assigned mean about the component std (0.2), not more.
  at::Tensor dist = (x - gm.means.index_select(0, k)).norm(2, 1);
  EXPECT_LT(dist.mean().item<double>(), 0.4);
  EXPECT_GT(dist.mean().item<double>(), 0.1);
}
