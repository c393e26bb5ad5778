// EDM's Heun sampler and EDMLoss with the tiny DDPM++ network, against the official code's numbers.
#include "pidistill/edm/edm_loss.h"
#include "pidistill/edm/precond.h"
#include "pidistill/edm/sampler.h"
#include "pidistill/nets/net_file.h"
#include "test_common.h"

#include <vector>

using namespace pidistill;

namespace {

std::shared_ptr<UNet> golden_net(at::ScalarType dtype) {
  auto loaded = load_net(test::golden("ddpmpp_uncond_weights.safetensors"));
  loaded.net->to(dtype);
  loaded.net->eval();
  return loaded.net;
}

// Passes calls through and records the sigma of each, as the reference recorded nfe_sigmas.
struct RecordingDenoiser : Denoiser {
  Denoiser& inner;
  std::vector<double> sigmas;
  explicit RecordingDenoiser(Denoiser& d) : inner(d) {}
  at::Tensor denoise(const at::Tensor& x, const at::Tensor& sigma, const at::Tensor& labels) override {
    sigmas.push_back(sigma.item<double>());
    return inner.denoise(x, sigma, labels);
  }
  double sigma_min() const override { return inner.sigma_min(); }
  double sigma_max() const override { return inner.sigma_max(); }
};

}  // namespace

TEST(EdmGolden, HeunFloat64) {
  auto ref = test::load_golden("edm_heun_f64.safetensors");
  Precond precond(golden_net(at::kDouble), PrecondType::EDM);
  RecordingDenoiser recorder(precond);
  std::vector<at::Tensor> trajectory;
  auto x = edm_sampler(recorder, ref.get("latents"), {}, SamplerConfig{}, nullptr, &trajectory);
  EXPECT_CLOSE(x, ref.get("x_final"), 1e-10);
  EXPECT_CLOSE(at::stack(trajectory), ref.get("trajectory"), 1e-10);
  EXPECT_CLOSE(at::tensor(recorder.sigmas, at::kDouble), ref.get("nfe_sigmas"), 1e-15);
}

TEST(EdmGolden, HeunFloat32Network) {
  // The official mixed precision: sampler arithmetic in float64, the network in float32.
  auto ref = test::load_golden("edm_heun_f64.safetensors");
  Precond precond(golden_net(at::kFloat), PrecondType::EDM);
  auto x = heun_sample(precond, ref.get("latents"), {});
  EXPECT_EQ(x.scalar_type(), at::kDouble);
  EXPECT_CLOSE(x, ref.get("x_final_official_net_f32"), 1e-5);
}

namespace {
void check_edm_loss(const std::string& file, at::ScalarType dtype, double tol) {
  auto ref = test::load_golden(file);
  Precond precond(golden_net(dtype), PrecondType::EDM);
  LossConfig config;  // EDMLoss defaults
  LossDraws draws{ref.get("rnd_normal"), ref.get("n_unit")};
  auto images = ref.get("images");
  auto sigma = loss_sigma(config, draws.rnd);
  EXPECT_CLOSE(sigma, ref.get("sigma"), tol);
  EXPECT_CLOSE(loss_weight(config, sigma), ref.get("weight"), tol);
  auto out = precond.forward(images + draws.n_unit * sigma, sigma);
  EXPECT_CLOSE(out.F, ref.get("F"), tol);
  auto loss = diffusion_loss(precond, config, images, {}, draws);
  EXPECT_EQ(loss.scalar_type(), dtype);
  EXPECT_CLOSE(loss, ref.get("loss"), tol);
}
}  // namespace

TEST(EdmGolden, EdmLossFloat64) { check_edm_loss("edm_loss_f64.safetensors", at::kDouble, 1e-10); }
TEST(EdmGolden, EdmLossFloat32) { check_edm_loss("edm_loss_f32.safetensors", at::kFloat, 1e-5); }

TEST(EdmGolden, LossGradientsReachTheNetwork) {
  auto ref = test::load_golden("edm_loss_f32.safetensors");
  auto net = golden_net(at::kFloat);
  net->train();
  Precond precond(net, PrecondType::EDM);
  auto gen = at::detail::createCPUGenerator(0);
  for (auto type : {PrecondType::EDM, PrecondType::VP, PrecondType::VE}) {
    LossConfig config;
    config.type = type;
    Precond p(net, type);
    auto loss = diffusion_loss(p, config, ref.get("images"), {}, gen);
    ASSERT_TRUE(at::isfinite(loss).all().item<bool>()) << to_string(type);
    loss.sum().backward();
    double grad_norm = 0;
    for (auto& q : net->parameters()) {
      if (q.grad().defined()) grad_norm += q.grad().pow(2).sum().item<double>();
      q.mutable_grad() = at::Tensor();
    }
    EXPECT_GT(grad_norm, 0) << to_string(type);
  }
}

TEST(EdmGolden, VpAndVeNoiseLevels) {
  LossConfig vp;
  vp.type = PrecondType::VP;
  auto t = at::tensor({0.0, 1.0}, at::kDouble).reshape({2, 1, 1, 1});  // rnd_uniform 0 -> t = 1, 1 -> epsilon_t
  auto sigma = loss_sigma(vp, t).flatten();
  EXPECT_NEAR(sigma[0].item<double>(), std::sqrt(std::exp(0.5 * 19.9 + 0.1) - 1), 1e-12);
  EXPECT_NEAR(sigma[1].item<double>(), std::sqrt(std::exp(0.5 * 19.9 * 1e-10 + 0.1 * 1e-5) - 1), 1e-12);
  LossConfig ve;
  ve.type = PrecondType::VE;
  sigma = loss_sigma(ve, t).flatten();
  EXPECT_NEAR(sigma[0].item<double>(), 0.02, 1e-15);
  EXPECT_NEAR(sigma[1].item<double>(), 100, 1e-12);
  EXPECT_NEAR(loss_weight(ve, at::tensor({4.0}, at::kDouble)).item<double>(), 1 / 16.0, 1e-15);
}
