// The PID loss against the official OneShotDenoiser.ode_losses (golden pid_loss_{l2,l1,lpips}_*): grid,
// intermediates, per-sample loss and the gradient of every student parameter; and the grid alone
// (schedules_*).
#include "pidistill/edm/precond.h"
#include "pidistill/nets/net_file.h"
#include "pidistill/nets/onednn_winograd.h"
#include "pidistill/nets/winograd_conv.h"
#include "pidistill/pid/pid_loss.h"
#include "pidistill/util/error.h"
#include "test_common.h"

#include <torch/torch.h>

using namespace pidistill;
using pidistill::test::golden;
using pidistill::test::load_golden;
using pidistill::test::on_device;
using pidistill::test::test_device;
using pidistill::test::rel_err;

TEST(PidGrid, Idx2SigmasGolden) {
  PidGrid grid;  // N = 250
  for (auto [file, dtype] : {std::pair{"schedules_f64.safetensors", at::kDouble},
                             std::pair{"schedules_f32.safetensors", at::kFloat}}) {
    auto g = load_golden(file);
    auto t = idx2sigmas(g.get("pid_indices_250"), grid, dtype);
    ASSERT_EQ(t.scalar_type(), dtype);
    // Same operations in the same order as PID: expected bitwise, allowed one rounding of pow.
    EXPECT_CLOSE(t, g.get("pid_idx2sigmas_250"), dtype == at::kDouble ? 1e-15 : 2e-7);
  }
}

TEST(PidGrid, NeighboursAndErrors) {
  PidGrid grid;
  auto j = neighbour_indices(at::tensor({0, 123, 248, 249}, at::kLong), grid);
  EXPECT_TRUE(j.equal(at::tensor({1, 124, 249, 248}, at::kLong)));
  grid.N = 1;
  EXPECT_THROW(validate(grid), Error);
  EXPECT_THROW(idx2sigmas(at::tensor({0}, at::kLong), grid, at::kDouble), Error);
  // Without the backward pairing the last index is never drawn.
  PidGrid forward_only;
  forward_only.N = 4;
  forward_only.last_index_backward = false;
  auto gen = at::detail::createCPUGenerator(7);
  auto i = sample_indices(1000, forward_only, gen);
  EXPECT_EQ(i.max().item<int64_t>(), 2);
  EXPECT_EQ(i.min().item<int64_t>(), 0);
}

struct LossCase {
  std::string distance;
  at::ScalarType dtype;
  bool joint = false;  // both student calls as one batch of 2B (--joint-student): must meet the same numbers
  // every 3x3 convolution (networks and LPIPS) by a Winograd kernel (--conv winograd-f2x2 / -f4x4): the same
  // numbers; Direct = LibTorch's
  ConvAlgorithm conv = ConvAlgorithm::Direct;
};

std::string conv_suffix(ConvAlgorithm conv) {
  return conv == ConvAlgorithm::WinogradF2x2 ? "_winograd" : conv == ConvAlgorithm::WinogradF4x4 ? "_winograd_f4x4" : "";
}

// A Winograd kernel for every layer it can take of the small golden networks (their 16-64 channels and 8-16 px
// are below the default floors).
struct WinogradEverywhere {
  explicit WinogradEverywhere(ConvAlgorithm conv) { set_conv_algorithm(conv, {1, 1, 0}); }
  ~WinogradEverywhere() { set_conv_algorithm(ConvAlgorithm::Direct); }
};
// gtest prints a parameter in the test list, and CTest copies that into every test's name: keep it short.
void PrintTo(const LossCase& c, std::ostream* os) {
  *os << c.distance << (c.dtype == at::kDouble ? "_f64" : "_f32") << (c.joint ? "_joint" : "") << conv_suffix(c.conv);
}

class PidLossGolden : public ::testing::TestWithParam<LossCase> {};

TEST_P(PidLossGolden, MatchesOfficial) {
  const auto [distance, dtype, joint, conv_kernel] = GetParam();
  if (conv_kernel == ConvAlgorithm::WinogradF4x4 && !onednn_winograd_available())
    GTEST_SKIP() << "oneDNN's Winograd F(4x4, 3x3) needs an AVX-512 CPU and a build with libdnnl-dev";
  WinogradEverywhere conv(conv_kernel);
  const bool f64 = dtype == at::kDouble;
  const std::string suffix = f64 ? "_f64" : "_f32";
  auto g = load_golden("pid_loss_" + distance + suffix + ".safetensors");
  auto g64 = load_golden("pid_loss_" + distance + "_f64.safetensors");

  auto teacher_net = load_net(golden("ddpmpp_uncond_weights.safetensors")).net;
  teacher_net->to(test_device(), dtype);
  teacher_net->eval();
  Precond teacher(teacher_net, PrecondType::EDM);
  Student student(clone_net(*teacher_net));
  student.F->train();

  Lpips lpips;
  PidLossConfig config;
  config.distance = pid_distance_from_string(distance);
  config.joint_student_call = joint;
  if (config.distance == PidDistance::LPIPS) {
    lpips = Lpips::synthetic().to(test_device(), dtype);
    config.lpips = &lpips;
  }
  auto out = pid_loss(student, teacher, on_device(g.get("z")), g.get("indices"), config);
  EXPECT_TRUE(out.indices2.cpu().equal(g.get("indices_plus1_mapped")));

  const double tight = f64 ? 1e-12 : 1e-5;  // values the network computes directly
  const double loose = f64 ? 1e-9 : 1e-3;   // finite differences amplify rounding by ~1/|t - t2|
  EXPECT_CLOSE(out.t, g.get("t"), f64 ? 1e-15 : 2e-7);
  EXPECT_CLOSE(out.t2, g.get("t2"), f64 ? 1e-15 : 2e-7);
  EXPECT_CLOSE(out.y_hat, g.get("y_hat"), tight);
  EXPECT_CLOSE(out.y_hat_dt, g.get("y_hat_dt"), tight);
  EXPECT_CLOSE(out.teacher_pred, g.get("teacher_pred"), tight);
  EXPECT_CLOSE(out.dydx, g.get("dydx"), loose);
  EXPECT_CLOSE(out.target, g.get("target"), loose);
  EXPECT_CLOSE(out.loss, g.get("loss"), f64 ? 1e-9 : 1e-4);

  out.loss.sum().backward();
  int checked = 0;
  double worst = 0;
  std::string worst_name;
  for (const auto& item : student.F->named_parameters()) {
    ASSERT_TRUE(item.value().grad().defined()) << item.key();
    const auto& grad = item.value().grad();
    const std::string key = "grad." + item.key();
    double err;
    if (!f64 && distance == "l1") {
      // sign(target - pred) flips near zero between f32 and f64: compare per-tensor norms against f64.
      auto ref = g64.get(key);
      err = (grad.to(at::kCPU, at::kDouble) - ref).norm().item<double>() / std::max(ref.norm().item<double>(), 1e-30);
    } else {
      err = rel_err(grad, g.get(key));
    }
    if (err > worst) worst = err, worst_name = item.key();
    ++checked;
  }
  const double grad_tol = f64 ? 1e-9 : (distance == "l1" ? 5e-2 : 1e-3);
  std::cout << "[ rel err ] worst of " << checked << " gradients: " << worst << " (" << worst_name << ", tol "
            << grad_tol << ")\n";
  EXPECT_EQ(checked, 142);
  EXPECT_LE(worst, grad_tol) << worst_name;
}

INSTANTIATE_TEST_SUITE_P(All, PidLossGolden,
                         ::testing::Values(LossCase{"l2", at::kDouble}, LossCase{"l2", at::kFloat},
                                           LossCase{"l1", at::kDouble}, LossCase{"l1", at::kFloat},
                                           LossCase{"lpips", at::kDouble}, LossCase{"lpips", at::kFloat},
                                           LossCase{"l2", at::kDouble, true}, LossCase{"l2", at::kFloat, true},
                                           LossCase{"l2", at::kFloat, false, ConvAlgorithm::WinogradF2x2},
                                           LossCase{"lpips", at::kFloat, false, ConvAlgorithm::WinogradF2x2},
                                           LossCase{"l2", at::kFloat, false, ConvAlgorithm::WinogradF4x4},
                                           LossCase{"lpips", at::kFloat, false, ConvAlgorithm::WinogradF4x4}),
                         [](const auto& info) {
                           return info.param.distance + (info.param.dtype == at::kDouble ? "_f64" : "_f32") +
                                  (info.param.joint ? "_joint" : "") + conv_suffix(info.param.conv);
                         });

TEST(PidLoss, HuberAndErrors) {
  PidLossConfig config;
  config.distance = PidDistance::Huber;
  auto a = at::zeros({2, 3, 4, 4}, at::kDouble), b = at::zeros({2, 3, 4, 4}, at::kDouble);
  b[1].fill_(0.5);
  auto loss = pid_distance(a, b, config);
  const double c = 0.00054 * std::sqrt(48.0);
  EXPECT_NEAR(loss[0].item<double>(), 0, 1e-15);
  EXPECT_NEAR(loss[1].item<double>(), std::sqrt(48 * 0.25 + c * c) - c, 1e-12);
  EXPECT_THROW(pid_distance_from_string("l3"), Error);
  config.distance = PidDistance::LPIPS;  // no network given
  EXPECT_THROW(pid_distance(a, b, config), Error);
}

// --precision bf16 / bf16-teacher against fp32 on the golden L2 case: how far the loss and the gradient move
// when the networks' convolutions and matrix products run in bf16 (printed; bounds set from measurement).
TEST(PidLoss, Bf16AgreesWithFp32) {
  auto g = load_golden("pid_loss_l2_f32.safetensors");
  auto teacher_net = load_net(golden("ddpmpp_uncond_weights.safetensors")).net;
  teacher_net->eval();
  Precond teacher(teacher_net, PrecondType::EDM);
  auto run = [&](Precision student_precision, Precision teacher_precision) {
    Student student(clone_net(*teacher_net));
    student.F->train();
    PidLossConfig config;
    config.student_precision = student_precision;
    config.teacher_precision = teacher_precision;
    auto out = pid_loss(student, teacher, g.get("z"), g.get("indices"), config);
    EXPECT_EQ(out.loss.scalar_type(), at::kFloat);
    out.loss.sum().backward();
    std::vector<at::Tensor> grads;
    for (const auto& p : student.F->parameters()) grads.push_back(p.grad().reshape({-1}));
    return std::make_pair(out.loss.detach(), at::cat(grads));
  };
  auto [loss32, grad32] = run(Precision::FP32, Precision::FP32);
  auto norm_err = [](const at::Tensor& a, const at::Tensor& ref) {
    return (a - ref).norm().item<double>() / ref.norm().item<double>();
  };
  auto [loss_t, grad_t] = run(Precision::FP32, Precision::BF16);
  auto [loss_b, grad_b] = run(Precision::BF16, Precision::BF16);
  const double e_loss_t = norm_err(loss_t, loss32), e_grad_t = norm_err(grad_t, grad32);
  const double e_loss_b = norm_err(loss_b, loss32), e_grad_b = norm_err(grad_b, grad32);
  std::cout << "[ bf16    ] teacher only: loss " << e_loss_t << ", gradient " << e_grad_t
            << "; student and teacher: loss " << e_loss_b << ", gradient " << e_grad_b << " (relative L2)\n";
  // Measured here: teacher only 8e-4 (loss) and 7e-3 (gradient); student too 0.25 and 0.40, because the student's
  // two bf16 outputs differ by little and their difference is divided by t - t2 (docs/PERFORMANCE.md). On a CPU
  // without AVX512-BF16 (AMD EPYC, AVX2) oneDNN's bf16 convolutions round elsewhere: teacher-only gradient 0.030.
  EXPECT_GT(e_loss_t, 0) << "autocast did not change anything: bf16 kernels not used?";
  EXPECT_LT(e_loss_t, 0.01);
  EXPECT_LT(e_grad_t, 0.05);
  EXPECT_GT(e_grad_b, e_grad_t);
}

// --precision bf16 where it is meant to be used: the bundled (trained) teacher, the paper's N = 250, batch 32.
// bf16 moves the gradient of a batch by much less than drawing another batch does (the noise the optimiser
// already averages over), and keeps its direction (docs/PERFORMANCE.md, "bf16 quality"). Bounds from
// measurement here: error 0.08 (cosine 0.9975) where another batch's fp32 gradient differs by 2.4 (0.4 for
// another pair of batches in the Python reference: how far batches differ varies, bf16's error much less).
TEST(PidLoss, Bf16GradientOfTheBundledTeacherIsWithinBatchNoise) {
  auto teacher_net =
      load_net(std::string(PIDISTILL_SOURCE_DIR) + "/models/fashion-mnist-ddpmpp-teacher.safetensors").net;
  teacher_net->eval();
  Precond teacher(teacher_net, PrecondType::EDM);
  Student student(clone_net(*teacher_net));
  student.F->train();
  auto gen = at::make_generator<at::CPUGeneratorImpl>(1);
  auto draw = [&] {
    return std::make_pair(at::randn({32, 1, 32, 32}, gen), at::randint(0, 250, {32}, gen, at::kLong));
  };
  auto batch_a = draw(), batch_b = draw();
  auto gradient = [&](const std::pair<at::Tensor, at::Tensor>& batch, Precision precision) {
    for (auto& p : student.F->parameters()) p.mutable_grad() = at::Tensor();
    PidLossConfig config;
    config.student_precision = config.teacher_precision = precision;
    auto out = pid_loss(student, teacher, batch.first, batch.second, config);
    out.loss.mean().backward();
    std::vector<at::Tensor> grads;  // parameters the loss does not reach (the unused label map) have none
    for (const auto& p : student.F->parameters())
      if (p.grad().defined()) grads.push_back(p.grad().reshape({-1}));
    return at::cat(grads);
  };
  const auto g32 = gradient(batch_a, Precision::FP32), g16 = gradient(batch_a, Precision::BF16);
  const auto other = gradient(batch_b, Precision::FP32);
  const double ref = g32.norm().item<double>();
  const double bf16_err = (g16 - g32).norm().item<double>() / ref;
  const double batch_diff = (other - g32).norm().item<double>() / ref;
  const double cosine = (g16 * g32).sum().item<double>() / (g16.norm().item<double>() * ref);
  std::cout << "[ bf16    ] bundled teacher, N 250, B 32: gradient error " << bf16_err << " (cosine " << cosine
            << "); another batch in fp32 differs by " << batch_diff << "\n";
  EXPECT_GT(bf16_err, 0) << "autocast did not change anything: bf16 kernels not used?";
  // Xeon (AVX512-BF16/AMX): 0.08, cosine 0.9975; AMD EPYC (AVX2, bf16 without hardware support): 0.19, 0.987.
  EXPECT_LT(bf16_err, 0.3);
  EXPECT_LT(bf16_err, batch_diff / 3);
  EXPECT_GT(cosine, 0.98);
}
