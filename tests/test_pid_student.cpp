// The PID student x_theta(z, t) against the official OneShotDenoiser.denoise (golden pid_student_io_*).
#include "pidistill/nets/net_file.h"
#include "pidistill/pid/mlp.h"
#include "pidistill/pid/student.h"
#include "pidistill/util/error.h"
#include "test_common.h"

#include <torch/torch.h>

using namespace pidistill;
using pidistill::test::golden;
using pidistill::test::load_golden;
using pidistill::test::on_device;
using pidistill::test::test_device;

static Student tiny_student(at::ScalarType dtype) {
  auto loaded = load_net(golden("ddpmpp_uncond_weights.safetensors"));
  loaded.net->to(dtype);
  return Student(clone_net(*loaded.net));
}

static void check_student_io(const std::string& file, at::ScalarType dtype, double tol) {
  auto g = load_golden(file);
  Student student = tiny_student(dtype);
  student.F->to(test_device());
  torch::NoGradGuard no_grad;
  auto out = student.evaluate(on_device(g.get("z")), on_device(g.get("t")));
  ASSERT_EQ(out.x_theta.scalar_type(), dtype);
  EXPECT_CLOSE(out.noise, g.get("noise"), tol);
  EXPECT_CLOSE(out.model_in, g.get("model_in"), tol);
  EXPECT_CLOSE(out.c_noise, g.get("c_noise"), tol);
  EXPECT_CLOSE(out.F, g.get("F"), tol);
  EXPECT_CLOSE(out.x_theta, g.get("x_theta"), tol);
  // Boundary condition by construction: at t = T the output is exactly T z.
  EXPECT_TRUE(out.x_theta[0].equal(out.noise[0]));
}

TEST(PidStudent, GoldenF64) { check_student_io("pid_student_io_f64.safetensors", at::kDouble, 1e-12); }
TEST(PidStudent, GoldenF32) { check_student_io("pid_student_io_f32.safetensors", at::kFloat, 1e-5); }

TEST(PidStudent, CloneIsIndependentOfTeacher) {
  auto loaded = load_net(golden("ddpmpp_uncond_weights.safetensors"));
  auto copy = clone_net(*loaded.net);
  auto p_teacher = loaded.net->parameters().front();
  auto p_student = copy->parameters().front();
  ASSERT_TRUE(p_student.equal(p_teacher));
  {
    torch::NoGradGuard no_grad;
    p_student.add_(1.0);
  }
  EXPECT_FALSE(p_student.equal(p_teacher));
}

TEST(PidStudent, RejectsTimesOutsideTheTrajectory) {
  torch::manual_seed(0);
  Student student(std::make_shared<Mlp>(MlpConfig{}));
  auto z = at::randn({3, 2});
  EXPECT_NO_THROW(student(z, at::tensor({0.002, 1.0, 80.0})));
  EXPECT_THROW(student(z, at::tensor({0.001, 1.0, 80.0})), Error);
  EXPECT_THROW(student(z, at::tensor({0.5, 1.0, 81.0})), Error);
  EXPECT_THROW(student(z, at::tensor({0.5, 1.0})), Error);  // wrong count
  // Any t in range, not only grid points; a scalar t broadcasts over the batch.
  auto x = student(z, at::tensor(3.3));
  EXPECT_EQ(x.sizes(), z.sizes());
}

TEST(PidStudent, MlpCloneMatches) {
  torch::manual_seed(1);
  auto mlp = std::make_shared<Mlp>(MlpConfig{});
  auto copy = clone_net(*mlp);
  auto z = at::randn({5, 2});
  auto t = at::full({5}, 0.7);
  torch::NoGradGuard no_grad;
  EXPECT_TRUE(Student(mlp)(z, t).equal(Student(copy)(z, t)));
}
