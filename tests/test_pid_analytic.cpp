// PID on an analytic teacher: a 2-D Gaussian mixture has an exact EDM denoiser, so the distilled student can
// be held against ground truth. With a coarse grid (N = 8) the L2-trained student must reproduce explicit
// Euler on that grid (the paper's theorem); with N = 250 its one-call samples must match the mixture.
#include "pidistill/edm/gaussian_mixture.h"
#include "pidistill/pid/mlp.h"
#include "pidistill/pid/pid_loss.h"
#include "pidistill/optim/radam.h"
#include "test_common.h"

#include <torch/torch.h>

#include <cmath>
#include <cstdio>

using namespace pidistill;

namespace {

GaussianMixture make_mixture() {
  auto weights = at::tensor({0.5, 0.3, 0.2}, at::kDouble);
  auto means = at::tensor({-1.0, -0.5, 1.0, 0.5, 0.0, 1.2}, at::kDouble).reshape({3, 2});
  auto stds = at::tensor({0.2, 0.15, 0.25}, at::kDouble);
  return GaussianMixture(weights, means, stds);
}

// Trains an MLP student with the L2 PID loss; a linearly decaying learning rate settles the fit.
Student distil(GaussianMixture& teacher, const PidGrid& grid, int steps, uint64_t seed) {
  torch::manual_seed(seed);
  MlpConfig mlp;
  mlp.hidden = 128;
  mlp.layers = 3;
  Student student(std::make_shared<Mlp>(mlp));
  RAdamConfig opt;
  opt.lr = 2e-3;
  RAdam radam(student.F->parameters(), opt);
  PidLossConfig config;
  config.grid = grid;
  config.distance = PidDistance::L2;
  auto gen = at::detail::createCPUGenerator(seed);
  const int64_t batch = 256;
  for (int step = 0; step < steps; ++step) {
    radam.config.lr = opt.lr * (1 - static_cast<double>(step) / steps);
    auto z = at::randn({batch, 2}, gen, at::kFloat);
    auto i = sample_indices(batch, grid, gen);
    auto out = pid_loss(student, teacher, z, i, config);
    radam.zero_grad();
    out.loss.mean().backward();
    radam.step();
  }
  student.F->eval();
  return student;
}

// x(t) for every t in `t_out` (descending, t_out[0] = 80) by integrating the probability-flow ODE from 80 z.
// substeps = 1: explicit Euler on the t_out grid itself; otherwise Heun with `substeps` Karras-spaced steps
// between consecutive t_out points (the reference solution).
std::vector<at::Tensor> solve_ode(GaussianMixture& teacher, const at::Tensor& z, const at::Tensor& t_out,
                                  int substeps) {
  auto x = z.to(at::kDouble) * 80.0;
  std::vector<at::Tensor> xs = {x};
  auto d = [&](const at::Tensor& x_, double t) {
    return (x_ - teacher.denoise(x_, at::scalar_tensor(t, at::kDouble))) / t;
  };
  for (int64_t k = 0; k + 1 < t_out.size(0); ++k) {
    const double t0 = t_out[k].item<double>(), t1 = t_out[k + 1].item<double>();
    if (substeps == 1) {
      x = x + (t1 - t0) * d(x, t0);
    } else {
      for (int s = 0; s < substeps; ++s) {
        const double r0 = std::pow(t0, 1 / 7.0), r1 = std::pow(t1, 1 / 7.0);
        const double t_cur = std::pow(r0 + (r1 - r0) * s / substeps, 7.0);
        const double t_next = std::pow(r0 + (r1 - r0) * (s + 1) / substeps, 7.0);
        auto d_cur = d(x, t_cur);
        auto x_next = x + (t_next - t_cur) * d_cur;
        auto d_prime = d(x_next, t_next);
        x = x + (t_next - t_cur) * (0.5 * d_cur + 0.5 * d_prime);
      }
    }
    xs.push_back(x);
  }
  return xs;
}

double mean_distance(const at::Tensor& a, const at::Tensor& b) {
  return (a.to(at::kDouble) - b.to(at::kDouble)).norm(2, {1}).mean().item<double>();
}

// Sliced Wasserstein-1 between equal-size point sets: W1 of sorted projections on 128 random directions.
double sliced_wasserstein(const at::Tensor& a, const at::Tensor& b, at::Generator& gen) {
  auto dirs = at::randn({2, 128}, gen, at::kDouble);
  dirs = dirs / dirs.norm(2, {0}, true);  // dirs: [2, 128] unit columns
  auto pa = std::get<0>(at::sort(a.to(at::kDouble).matmul(dirs), 0));
  auto pb = std::get<0>(at::sort(b.to(at::kDouble).matmul(dirs), 0));
  return (pa - pb).abs().mean().item<double>();
}

}  // namespace

TEST(PidAnalytic, CoarseGridReproducesEuler) {
  auto teacher = make_mixture();
  PidGrid grid;
  grid.N = 8;
  Student student = distil(teacher, grid, /*steps=*/3000, /*seed=*/1);

  auto gen = at::detail::createCPUGenerator(100);
  auto z = at::randn({2000, 2}, gen, at::kDouble);
  auto t_grid = idx2sigmas(at::arange(grid.N, at::kLong), grid, at::kDouble);  // t_grid: [8], 80 .. 0.002
  auto euler = solve_ode(teacher, z, t_grid, 1);
  auto exact = solve_ode(teacher, z, t_grid, 64);
  torch::NoGradGuard no_grad;
  double sum_euler = 0, sum_exact = 0;
  for (int64_t k = 1; k < grid.N; ++k) {
    auto x = student(z.to(at::kFloat), t_grid[k].expand({2000}));
    const double to_euler = mean_distance(x, euler[k]), to_exact = mean_distance(x, exact[k]);
    const double euler_vs_exact = mean_distance(euler[k], exact[k]);
    std::printf("[ analytic ] N=8 t=%-9.4g |student-euler| %.4f  |student-exact| %.4f  |euler-exact| %.4f\n",
                t_grid[k].item<double>(), to_euler, to_exact, euler_vs_exact);
    sum_euler += to_euler, sum_exact += to_exact;
  }
  auto x_end = student(z.to(at::kFloat), t_grid[grid.N - 1].expand({2000}));
  const double end_euler = mean_distance(x_end, euler.back()), end_exact = mean_distance(x_end, exact.back());
  std::printf(
      "[ analytic ] N=8 one-call (t=0.002): to Euler %.4f, to exact ODE %.4f (ratio %.3f); "
      "grid mean: %.4f vs %.4f\n",
      end_euler, end_exact, end_euler / end_exact, sum_euler / 7, sum_exact / 7);
  EXPECT_LT(end_euler, 0.5 * end_exact);
  EXPECT_LT(sum_euler, 0.5 * sum_exact);
}

TEST(PidAnalytic, FineGridMatchesMixture) {
  auto teacher = make_mixture();
  PidGrid grid;  // N = 250, the paper's
  Student student = distil(teacher, grid, /*steps=*/4000, /*seed=*/2);

  const int64_t n = 4000;
  auto gen = at::detail::createCPUGenerator(200);
  auto z = at::randn({n, 2}, gen, at::kFloat);
  at::Tensor x;
  {
    torch::NoGradGuard no_grad;
    x = student(z, at::full({n}, 0.002, at::kFloat)).to(at::kDouble);
  }
  auto exact = teacher.sample(n, gen);
  auto exact2 = teacher.sample(n, gen);
  auto shares = at::bincount(teacher.component_of(x), {}, 3).to(at::kDouble) / n;
  double worst_pp = 0;
  for (int k = 0; k < 3; ++k) {
    const double diff = 100 * std::abs(shares[k].item<double>() - teacher.weights[k].item<double>());
    worst_pp = std::max(worst_pp, diff);
    std::printf("[ analytic ] N=250 component %d: student share %.1f%%, mixture weight %.1f%%\n", k,
                100 * shares[k].item<double>(), 100 * teacher.weights[k].item<double>());
  }
  const double sw = sliced_wasserstein(x, exact, gen);
  const double sw_floor = sliced_wasserstein(exact2, exact, gen);
  const double sw_prior = sliced_wasserstein(z.to(at::kDouble), exact, gen);
  std::printf(
      "[ analytic ] N=250 sliced W1 to exact samples: student %.4f, exact-vs-exact %.4f, N(0,I) %.4f\n", sw,
      sw_floor, sw_prior);
  // Per latent: the one-call sample against the exact ODE solution from the same z.
  auto t_ends = at::tensor({80.0, 0.002}, at::kDouble);
  auto exact_x = solve_ode(teacher, z.to(at::kDouble), t_ends, 256).back();
  const double to_ode = mean_distance(x, exact_x);
  const double spread = mean_distance(exact_x, exact_x.roll(1, 0));  // distance between unrelated samples
  std::printf("[ analytic ] N=250 |student(z) - ODE(z)| mean %.4f (unrelated samples: %.4f)\n", to_ode,
              spread);
  EXPECT_LE(worst_pp, 5.0);
  EXPECT_LT(sw, 0.25 * sw_prior);
  EXPECT_LT(to_ode, 0.1 * spread);
}
