#include "pidistill/pid/pid_loss.h"

#include "pidistill/util/error.h"

#include <ATen/ATen.h>
#include <torch/torch.h>

#include <cmath>
#include <tuple>
#include <utility>

namespace pidistill {

PidDistance pid_distance_from_string(const std::string& name) {
  if (name == "l2") return PidDistance::L2;
  if (name == "l1") return PidDistance::L1;
  if (name == "lpips") return PidDistance::LPIPS;
  if (name == "huber") return PidDistance::Huber;
  fail("--loss", "unknown distance '" + name + "' (expected lpips, l2, l1 or huber)");
}

std::string to_string(PidDistance distance) {
  switch (distance) {
    case PidDistance::L2:
      return "l2";
    case PidDistance::L1:
      return "l1";
    case PidDistance::LPIPS:
      return "lpips";
    case PidDistance::Huber:
      return "huber";
  }
  return "?";
}

static at::Tensor per_sample_mean(const at::Tensor& x) { return x.reshape({x.size(0), -1}).mean(1); }  // [B]

at::Tensor pid_distance(const at::Tensor& target, const at::Tensor& pred, const PidLossConfig& config) {
  auto diff = target - pred;
  switch (config.distance) {
    case PidDistance::L2:
      return per_sample_mean(diff.square());
    case PidDistance::L1:
      return per_sample_mean(diff.abs());
    case PidDistance::Huber: {
      // Why the norm over the whole sample: iCT's pseudo-Huber is sqrt(|x - y|^2 + c^2) - c with
      // c = 0.00054 sqrt(d), which scales with the dimension d of the sample.
      const int64_t d = diff[0].numel();
      const double c = config.huber_c > 0 ? config.huber_c : 0.00054 * std::sqrt(static_cast<double>(d));
      return at::sqrt(diff.reshape({diff.size(0), -1}).square().sum(1) + c * c) - c;
    }
    case PidDistance::LPIPS:
      if (!config.lpips) fail("--loss lpips", "no LPIPS network loaded (give --lpips-weights)");
      if (target.dim() != 4 || target.size(1) != 3)
        fail("--loss lpips", "LPIPS needs RGB images [B, 3, H, W]; use l2, l1 or huber for this data");
      return lpips_distance(*config.lpips, target, pred);  // resize to 224, (x+1)/2, LPIPS
  }
  fail("pid_loss", "unknown distance");
}

// x_theta(z, t) and x_theta(z, t2) (each [B, C, H, W]): two calls, or one on a batch of 2B, under the student's
// autocast precision.
static std::pair<at::Tensor, at::Tensor> student_at_both_times(const Student& student, const at::Tensor& z,
                                                               const at::Tensor& t, const at::Tensor& t2,
                                                               const at::Tensor& class_labels,
                                                               const PidLossConfig& config) {
  AutocastGuard mixed(config.student_precision, z.is_cuda());
  if (!config.joint_student_call) return {student(z, t, class_labels), student(z, t2, class_labels)};
  const int64_t B = z.size(0);
  auto labels2 = class_labels.defined() ? at::cat({class_labels, class_labels}) : class_labels;
  auto both = student(at::cat({z, z}), at::cat({t, t2}), labels2);  // both: [2B, C, H, W]
  return {both.narrow(0, 0, B), both.narrow(0, B, B)};
}

PidLossOutput pid_loss(const Student& student, Denoiser& teacher, const at::Tensor& z,
                       const at::Tensor& indices, const PidLossConfig& config,
                       const at::Tensor& class_labels) {
  validate(config.grid);
  if (indices.dim() != 1 || indices.size(0) != z.size(0)) fail("pid_loss", "need one grid index per latent");
  if (indices.min().item<int64_t>() < 0 || indices.max().item<int64_t>() >= config.grid.N)
    fail("pid_loss", "grid index outside 0..N-1");
  PidLossOutput out;
  const auto dtype = z.scalar_type();
  out.indices = indices;
  out.indices2 = neighbour_indices(indices, config.grid);
  out.t = idx2sigmas(indices, config.grid, dtype).to(z.device());        // t: [B]
  out.t2 = idx2sigmas(out.indices2, config.grid, dtype).to(z.device());  // t2: [B]
  std::tie(out.y_hat, out.y_hat_dt) = student_at_both_times(student, z, out.t, out.t2, class_labels, config);
  // Why back to the latents' dtype: the two outputs differ by little, and their difference is divided by t - t2.
  out.y_hat = out.y_hat.to(dtype);
  out.y_hat_dt = out.y_hat_dt.to(dtype);
  std::vector<int64_t> bshape(z.dim(), 1);
  bshape[0] = z.size(0);
  auto t_b = out.t.reshape(bshape), t2_b = out.t2.reshape(bshape);  // [B, 1, 1, 1]
  out.dydx = (out.y_hat - out.y_hat_dt) / (t_b - t2_b);
  {
    // Stop-gradient: the teacher only supplies the ODE's right-hand side at the student's current point.
    torch::NoGradGuard no_grad;
    AutocastGuard mixed(config.teacher_precision, z.is_cuda());
    out.teacher_pred = teacher.denoise(out.y_hat.detach(), out.t, class_labels).to(dtype);
  }
  out.target = out.y_hat - out.dydx * t_b;
  out.loss = pid_distance(out.target, out.teacher_pred, config);  // loss: [B]
  return out;
}

}  // namespace pidistill
