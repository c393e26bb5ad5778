// RAdam and PID's EMA against torch 1.13.1 (golden radam_ema_{f32,f64}), plus state round trips.
#include "pidistill/optim/ema_rates.h"
#include "pidistill/optim/radam.h"
#include "pidistill/util/error.h"
#include "test_common.h"

#include <ATen/ATen.h>

#include <cmath>

using namespace pidistill;
using pidistill::test::load_golden;

namespace {

struct RadamRun {
  at::Tensor params, exp_avg_steps, exp_avg_sq_steps, ema_steps;  // [12, 3, 4] ... [3, 12, 3, 4]
};

// Replays the golden run: the stored gradient of step k is assigned to .grad before step k.
RadamRun replay(const TensorFile& g, double weight_decay) {
  at::Tensor theta = g.get("param_init").clone();
  at::Tensor grads = g.get("grads");
  RAdamConfig config;
  config.lr = 0.01;
  config.weight_decay = weight_decay;
  RAdam opt({theta}, config);
  auto rates_t = g.get("ema_rates");
  std::vector<double> rates;
  for (int64_t r = 0; r < rates_t.numel(); ++r) rates.push_back(rates_t[r].item<double>());
  Ema ema({theta}, rates);
  std::vector<at::Tensor> p, m, v, e;
  for (int64_t k = 0; k < grads.size(0); ++k) {
    theta.mutable_grad() = grads[k].clone();
    opt.step();
    ema.update({theta});
    p.push_back(theta.clone());
    m.push_back(opt.exp_avg[0].clone());
    v.push_back(opt.exp_avg_sq[0].clone());
    std::vector<at::Tensor> er;
    for (auto& a : ema.averages) er.push_back(a[0].clone());
    e.push_back(at::stack(er));  // [3, 3, 4]
  }
  return {at::stack(p), at::stack(m), at::stack(v), at::stack(e).transpose(0, 1)};
}

void check(const std::string& file, double tol) {
  auto g = load_golden(file);
  for (auto [prefix, wd] : {std::pair{"wd0.", 0.0}, std::pair{"wd001.", 0.01}}) {
    SCOPED_TRACE(file + " " + prefix);
    RadamRun run = replay(g, wd);
    std::string pre = prefix;
    EXPECT_CLOSE(run.params, g.get(pre + "params"), tol);
    EXPECT_CLOSE(run.exp_avg_steps, g.get(pre + "exp_avg_steps"), tol);
    EXPECT_CLOSE(run.exp_avg_sq_steps, g.get(pre + "exp_avg_sq_steps"), tol);
    EXPECT_CLOSE(run.ema_steps, g.get(pre + "ema_steps"), tol);
    EXPECT_CLOSE(run.ema_steps.select(1, 11), g.get(pre + "ema_final"), tol);
    EXPECT_CLOSE(run.exp_avg_steps[11], g.get(pre + "exp_avg"), tol);
    // Per-step maximum |difference| in units of the golden tensor's scale, to see bit-exactness when it holds.
    double worst = (run.params.to(at::kDouble) - g.get(pre + "params").to(at::kDouble)).abs().max().item<double>();
    std::cout << "[ params max abs diff ] " << file << " " << prefix << " " << worst << "\n";
  }
}

}  // namespace

TEST(RAdamGolden, Float64MatchesTorch) { check("radam_ema_f64.safetensors", 1e-13); }

TEST(RAdamGolden, Float32MatchesTorch) { check("radam_ema_f32.safetensors", 2e-6); }

TEST(RAdam, UndefinedGradIsSkipped) {
  at::Tensor a = at::ones({2}, at::kDouble), b = at::ones({3}, at::kDouble);
  RAdam opt({a, b});
  a.mutable_grad() = at::full({2}, 0.5, at::kDouble);
  opt.step();
  EXPECT_EQ(opt.step_count[0], 1);
  EXPECT_EQ(opt.step_count[1], 0);
  EXPECT_TRUE(at::equal(b, at::ones({3}, at::kDouble)));
  EXPECT_FALSE(at::equal(a, at::ones({2}, at::kDouble)));
}

TEST(RAdam, StateRoundTripResumesExactly) {
  auto g = load_golden("radam_ema_f32.safetensors");
  at::Tensor grads = g.get("grads");
  at::Tensor theta = g.get("param_init").clone();
  RAdam opt({theta}, {0.01, 0.9, 0.999, 1e-8, 0.01});
  Ema ema({theta}, {0.9, 0.999});
  for (int k = 0; k < 7; ++k) {
    theta.mutable_grad() = grads[k].clone();
    opt.step();
    ema.update({theta});
  }
  // A second optimiser resumed from the saved state must continue exactly as the first.
  at::Tensor theta2 = theta.clone();
  RAdam opt2({theta2}, {0.01, 0.9, 0.999, 1e-8, 0.01});
  Ema ema2({theta2}, {0.9, 0.999});
  opt2.load_state(opt.state_tensors());
  ema2.load_state(ema.state_tensors());
  for (int k = 7; k < 12; ++k) {
    theta.mutable_grad() = grads[k].clone();
    theta2.mutable_grad() = grads[k].clone();
    opt.step();
    opt2.step();
    ema.update({theta});
    ema2.update({theta2});
  }
  EXPECT_TRUE(at::equal(theta, theta2));
  EXPECT_TRUE(at::equal(ema.averages[1][0], ema2.averages[1][0]));
  EXPECT_EQ(opt2.step_count[0], 12);
}

TEST(RAdam, LoadStateNamesMissingKey) {
  at::Tensor a = at::ones({2});
  RAdam opt({a});
  NamedTensors state = opt.state_tensors();
  state.pop_back();
  try {
    opt.load_state(state);
    FAIL() << "expected Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("radam.0.exp_avg_sq"), std::string::npos) << e.what();
  }
  Ema ema({a}, {0.5});
  EXPECT_THROW(ema.load_state({{"ema.0.0", at::ones({3})}}), Error);
}

TEST(Ema, FormulaAndSeparateRounding) {
  // e_1 = rate*e_0 + (1-rate)*theta_1, with float32(1 - rate) not equal to 1 - float32(rate).
  at::Tensor theta = at::full({4}, 3.0f);
  Ema ema({theta}, {0.999});
  theta.fill_(7.0f);
  ema.update({theta});
  float expect = std::fma(static_cast<float>(1 - 0.999), 7.0f, 3.0f * static_cast<float>(0.999));
  EXPECT_EQ(ema.averages[0][0][0].item<float>(), expect);
  EXPECT_NEAR(ema.averages[0][0][0].item<float>(), 0.999 * 3 + 0.001 * 7, 1e-6);
}
