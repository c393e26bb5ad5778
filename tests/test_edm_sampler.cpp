// EDM samplers against closed-form denoisers: the schedule and call sequence of the reference run,
// convergence to the exact ODE solution, and the invariants of the stochastic sampler.
#include "pidistill/edm/karras.h"
#include "pidistill/edm/sampler.h"
#include "pidistill/util/error.h"
#include "test_common.h"

#include <ATen/CPUGeneratorImpl.h>

#include <cmath>
#include <vector>

using namespace pidistill;

namespace {

// Data ~ N(0, s^2 I): D(x, sigma) = s^2 / (s^2 + sigma^2) x, and the ODE solution from x(T) is
// x(sigma) = x(T) sqrt(s^2 + sigma^2) / sqrt(s^2 + T^2). Records every sigma it is called with.
struct GaussianDenoiser : Denoiser {
  double s = 0.5;
  std::vector<double> sigmas_seen;
  at::Tensor denoise(const at::Tensor& x, const at::Tensor& sigma, const at::Tensor&) override {
    EXPECT_EQ(sigma.dim(), 0);
    EXPECT_EQ(x.scalar_type(), at::kDouble);
    double sig = sigma.item<double>();
    sigmas_seen.push_back(sig);
    return x * (s * s / (s * s + sig * sig));
  }
};

at::Tensor test_latents(int64_t seed) {
  auto gen = at::detail::createCPUGenerator(seed);
  return at::randn({4, 3, 8, 8}, gen, at::kFloat);
}

}  // namespace

TEST(EdmSampler, KarrasSigmasMatchGolden) {
  auto ref = test::load_golden("schedules_f64.safetensors").get("edm_t_steps_18");
  auto t_steps = karras_sigmas(18, 0.002, 80, 7);
  EXPECT_CLOSE(t_steps, ref, 1e-15);
  EXPECT_EQ(t_steps[18].item<double>(), 0.0);
  EXPECT_THROW(karras_sigmas(1), Error);
  EXPECT_THROW(karras_sigmas(18, 80, 0.002), Error);
}

TEST(EdmSampler, HeunCallsTheDenoiserAtTheReferenceSigmas) {
  auto ref = test::load_golden("edm_heun_f64.safetensors").get("nfe_sigmas");  // [35]
  GaussianDenoiser denoiser;
  SamplerConfig config;  // 18 steps
  EXPECT_EQ(sampler_nfe(config), 35);
  heun_sample(denoiser, test_latents(1), {}, config);
  ASSERT_EQ(denoiser.sigmas_seen.size(), 35u);
  auto seen = at::tensor(denoiser.sigmas_seen, at::kDouble);
  EXPECT_CLOSE(seen, ref, 1e-15);
}

TEST(EdmSampler, HeunConvergesToTheExactOdeSolution) {
  GaussianDenoiser denoiser;
  auto latents = test_latents(2);
  double s = denoiser.s, T = 80, t_end = 0;  // last step goes to sigma = 0
  auto exact = latents.to(at::kDouble) * T * (std::sqrt(s * s + t_end * t_end) / std::sqrt(s * s + T * T));
  SamplerConfig config;
  std::vector<at::Tensor> trajectory;
  auto x_heun = edm_sampler(denoiser, latents, {}, config, nullptr, &trajectory);
  EXPECT_EQ(x_heun.scalar_type(), at::kDouble);
  ASSERT_EQ(trajectory.size(), 19u);
  EXPECT_TRUE(trajectory.back().equal(x_heun));
  EXPECT_TRUE(trajectory.front().equal(latents.to(at::kDouble) * 80.0));
  double err_heun = test::rel_err(x_heun, exact);
  double err_euler = test::rel_err(euler_sample(denoiser, latents, {}, config), exact);
  config.num_steps = 72;
  double err_heun_72 = test::rel_err(heun_sample(denoiser, latents, {}, config), exact);
  std::cout << "[ rel err ] heun 18: " << err_heun << ", heun 72: " << err_heun_72
            << ", euler 18: " << err_euler << "\n";
  EXPECT_LT(err_heun, 0.1);
  EXPECT_LT(err_heun_72, err_heun / 10);  // second order: 4x the steps, about 16x smaller error
  EXPECT_LT(err_heun, err_euler);
}

TEST(EdmSampler, EulerMakesOneCallPerStep) {
  GaussianDenoiser denoiser;
  SamplerConfig config;
  config.num_steps = 10;
  config.solver = Solver::Euler;
  EXPECT_EQ(sampler_nfe(config), 10);
  edm_sampler(denoiser, test_latents(3), {}, config);
  EXPECT_EQ(denoiser.sigmas_seen.size(), 10u);
  EXPECT_EQ(solver_from_string("euler"), Solver::Euler);
  EXPECT_THROW(solver_from_string("rk4"), Error);
}

TEST(EdmSampler, ZeroChurnIsBitExactlyDeterministic) {
  GaussianDenoiser a, b;
  auto latents = test_latents(4);
  SamplerConfig config;
  auto x_det = heun_sample(a, latents, {}, config);
  auto gen = at::detail::createCPUGenerator(123);
  config.S_churn = 0;
  config.S_min = 0.05;
  config.S_max = 50;
  auto x_gen = heun_sample(b, latents, {}, config, &gen);
  EXPECT_TRUE(x_det.equal(x_gen));
}

TEST(EdmSampler, ChurnIsSeededAndChangesTheResult) {
  auto latents = test_latents(5);
  SamplerConfig config;
  config.S_churn = 40;
  config.S_min = 0.05;
  config.S_max = 50;
  auto run = [&](int64_t seed) {
    GaussianDenoiser d;
    auto gen = at::detail::createCPUGenerator(seed);
    return heun_sample(d, latents, {}, config, &gen);
  };
  auto x1 = run(7), x1_again = run(7), x2 = run(8);
  EXPECT_TRUE(x1.equal(x1_again));
  EXPECT_FALSE(x1.equal(x2));
  GaussianDenoiser d;
  EXPECT_THROW(heun_sample(d, latents, {}, config, nullptr), Error);  // churn needs a generator
}

TEST(EdmSampler, ChurnGammaIsClippedAndOnlyInsideTheRange) {
  SamplerConfig config;
  config.num_steps = 18;
  config.S_churn = 1000;  // S_churn / num_steps far above sqrt(2) - 1
  config.S_min = 0.05;
  config.S_max = 50;
  EXPECT_DOUBLE_EQ(churn_gamma(config, 1.0), std::sqrt(2.0) - 1);
  EXPECT_EQ(churn_gamma(config, 0.01), 0.0);
  EXPECT_EQ(churn_gamma(config, 80), 0.0);
  config.S_churn = 1.8;
  EXPECT_DOUBLE_EQ(churn_gamma(config, 1.0), 0.1);

  // The denoiser sees t_hat = t (1 + gamma) inside [S_min, S_max] and exactly t_i outside.
  GaussianDenoiser d;
  auto gen = at::detail::createCPUGenerator(9);
  config.S_churn = 1000;
  heun_sample(d, test_latents(6), {}, config, &gen);
  auto t = karras_sigmas(18);
  ASSERT_EQ(d.sigmas_seen.size(), 35u);
  for (int i = 0, call = 0; i < 18; ++i) {
    double t_cur = t[i].item<double>();
    double expect = (t_cur >= 0.05 && t_cur <= 50) ? t_cur * std::sqrt(2.0) : t_cur;
    EXPECT_NEAR(d.sigmas_seen[call], expect, 1e-12 * expect) << "step " << i;
    call += (i < 17) ? 2 : 1;
  }
}

TEST(EdmSampler, ChurnNoiseHasTheStatedScale) {
  // With a denoiser that returns x (D = x, so d = 0), the sampler only adds churn noise: the variance of the
  // result is T^2 + sum over churned steps of (t_hat^2 - t^2) S_noise^2.
  struct Identity : Denoiser {
    at::Tensor denoise(const at::Tensor& x, const at::Tensor&, const at::Tensor&) override { return x; }
  } identity;
  SamplerConfig config;
  config.S_churn = 18 * 0.2;  // gamma = 0.2
  config.S_min = 1;
  config.S_max = 10;
  config.S_noise = 1.5;
  config.sigma_max = 10;  // a small start so the churn noise is a large part of the variance
  auto gen = at::detail::createCPUGenerator(11);
  auto latents = at::randn({64, 1, 32, 32}, gen, at::kFloat);
  auto x = heun_sample(identity, latents, {}, config, &gen);
  auto t = karras_sigmas(18, 0.002, 10);
  double expected_var = 10.0 * 10.0;
  for (int i = 0; i < 18; ++i) {
    double t_cur = t[i].item<double>();
    if (t_cur >= 1 && t_cur <= 10) expected_var += (1.44 - 1) * t_cur * t_cur * 1.5 * 1.5;
  }
  double var = x.var().item<double>();
  std::cout << "variance " << var << " expected " << expected_var << "\n";
  EXPECT_NEAR(var, expected_var, 0.03 * expected_var);
  EXPECT_GT(expected_var, 10.0 * 10.0 * 1.3);  // the check would notice missing noise
}

TEST(EdmSampler, HeunAtTimesIsTheSamplersTrajectory) {
  // On EDM's own t_steps with one sub-step each, heun_at_times must be edm_sampler's trajectory (but the last
  // state, which edm_sampler takes to sigma = 0 with an Euler step).
  GaussianDenoiser a, b;
  auto latents = test_latents(3);
  SamplerConfig config;
  std::vector<at::Tensor> trajectory;
  edm_sampler(a, latents, {}, config, nullptr, &trajectory);
  auto t_steps = karras_sigmas(config.num_steps);
  std::vector<double> times;
  for (int i = 0; i < config.num_steps; ++i) times.push_back(t_steps[i].item<double>());
  auto states = heun_at_times(b, latents, {}, times, /*substeps=*/1);
  ASSERT_EQ(states.size(), times.size());
  double worst = 0;
  for (size_t i = 0; i < times.size(); ++i) worst = std::max(worst, test::rel_err(states[i], trajectory[i]));
  std::cout << "[ rel err ] heun_at_times vs edm_sampler trajectory: " << worst << "\n";
  EXPECT_LE(worst, 1e-12);
}

TEST(EdmSampler, HeunAtTimesFollowsTheExactOde) {
  GaussianDenoiser d;
  auto latents = test_latents(4);
  const double s = d.s, T = 80;
  const std::vector<double> times = {80, 20, 5, 1, 0.2, 0.002};
  auto states = heun_at_times(d, latents, {}, times, /*substeps=*/16);
  auto fine = heun_at_times(d, latents, {}, times, /*substeps=*/64);
  for (size_t k = 0; k < times.size(); ++k) {
    auto exact =
        latents.to(at::kDouble) * T * (std::sqrt(s * s + times[k] * times[k]) / std::sqrt(s * s + T * T));
    const double err = test::rel_err(states[k], exact), err_fine = test::rel_err(fine[k], exact);
    std::cout << "[ rel err ] t = " << times[k] << ": 16 sub-steps " << err << ", 64 sub-steps " << err_fine
              << "\n";
    EXPECT_LE(err, 5e-3) << "t = " << times[k];
    if (k > 0)
      EXPECT_LE(err_fine, err / 8) << "t = " << times[k];  // second order: 4x the steps, ~16x smaller
  }
  EXPECT_THROW(heun_at_times(d, latents, {}, {1, 5}), Error);
  EXPECT_THROW(heun_at_times(d, latents, {}, {5, 0}), Error);
  EXPECT_THROW(heun_at_times(d, latents, {}, {5, 1}, 0), Error);
}
