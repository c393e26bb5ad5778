// EDM, VP and VE preconditioners around the tiny golden nets: model input, noise label, F and D, f32 and f64.
#include "pidistill/edm/precond.h"
#include "pidistill/nets/net_file.h"
#include "pidistill/util/error.h"
#include "test_common.h"

#include <ATen/ATen.h>

using namespace pidistill;
using pidistill::test::golden;
using pidistill::test::load_golden;
using pidistill::test::on_device;
using pidistill::test::test_device;

namespace {

struct Case {
  const char* name;
  bool cond, aug;
};
const Case kCases[] = {{"ddpmpp_uncond", false, false}, {"ddpmpp_cond", true, true}, {"ncsnpp_uncond", false, false},
                       {"adm_cond", true, false}};

void check(const Case& c, bool f64) {
  const double tol = f64 ? 1e-12 : 1e-5;
  auto io = load_golden(std::string(c.name) + (f64 ? "_io_f64.safetensors" : "_io_f32.safetensors"));
  auto loaded = load_net(golden(std::string(c.name) + "_weights.safetensors"));
  loaded.net->to(test_device(), f64 ? at::kDouble : at::kFloat);
  at::NoGradGuard no_grad;
  at::Tensor labels = c.cond ? on_device(io.get("class_labels")) : at::Tensor();
  auto x = on_device(io.get("x")), sigma = on_device(io.get("sigma"));
  int checked = 0;
  for (const char* kind : {"edm", "vp", "ve"}) {
    std::string k = kind;
    if (!io.has(k + ".D")) continue;
    SCOPED_TRACE(k);
    Precond precond(loaded.net, precond_from_string(k));
    auto out = precond.forward(x, sigma, labels);
    EXPECT_CLOSE(out.model_in, io.get(k + ".model_in"), tol);
    EXPECT_CLOSE(out.noise_labels, io.get(k + ".noise_labels"), tol);
    EXPECT_CLOSE(out.F, io.get(k + ".F"), tol);
    EXPECT_CLOSE(out.D, io.get(k + ".D"), tol);
    EXPECT_CLOSE(precond.denoise(x, sigma, labels), io.get(k + ".D"), tol);
    ++checked;
  }
  EXPECT_GE(checked, 1);
  if (io.has("edm.D_nolabel")) {
    Precond precond(loaded.net, PrecondType::EDM);
    EXPECT_CLOSE(precond.forward(x, sigma).D, io.get("edm.D_nolabel"), tol);
  }
  if (io.has("edm.D_aug")) {
    Precond precond(loaded.net, PrecondType::EDM);
    EXPECT_CLOSE(precond.forward(x, sigma, labels, on_device(io.get("augment_labels"))).D,
                 io.get("edm.D_aug"), tol);
  }
}

}  // namespace

TEST(PrecondGolden, Float64) {
  for (const auto& c : kCases) {
    SCOPED_TRACE(c.name);
    check(c, true);
  }
}

TEST(PrecondGolden, Float32) {
  for (const auto& c : kCases) {
    SCOPED_TRACE(c.name);
    check(c, false);
  }
}

TEST(PrecondGolden, DenoiseKeepsInputDtypeAndAcceptsScalarSigma) {
  auto io = load_golden("ddpmpp_uncond_io_f64.safetensors");
  auto loaded = load_net(golden("ddpmpp_uncond_weights.safetensors"));
  loaded.net->to(at::kDouble);
  Precond precond(loaded.net, PrecondType::EDM);
  at::NoGradGuard no_grad;
  auto x = io.get("x").to(at::kFloat);
  auto sigma = io.get("sigma");
  auto d = precond.denoise(x, sigma[2]);  // 0-dim sigma
  EXPECT_EQ(d.scalar_type(), at::kFloat);
  auto ref = precond.forward(x, sigma[2].expand({x.size(0)})).D;
  EXPECT_CLOSE(d, ref, 1e-7);
}

TEST(PrecondGolden, NamesAndRanges) {
  EXPECT_EQ(to_string(precond_from_string("vp")), "vp");
  EXPECT_THROW(precond_from_string("iddpm"), Error);
  auto net = load_net(golden("ddpmpp_uncond_weights.safetensors")).net;
  Precond vp(net, PrecondType::VP), ve(net, PrecondType::VE), edm(net, PrecondType::EDM);
  // EDM's VPPrecond: sigma(1) = sqrt(exp(19.9/2 + 0.1) - 1) ~ 152.17, sigma(1e-5) ~ 0.001
  EXPECT_NEAR(vp.sigma_max(), 152.17, 0.01);
  EXPECT_NEAR(vp.sigma_min(), 0.0010, 1e-4);
  EXPECT_EQ(ve.sigma_min(), 0.02);
  EXPECT_EQ(ve.sigma_max(), 100);
  EXPECT_EQ(edm.sigma_min(), 0);
  auto s = at::tensor({0.5, 2.0}, at::kDouble);
  EXPECT_TRUE(at::equal(vp.round_sigma(s), s));
}
