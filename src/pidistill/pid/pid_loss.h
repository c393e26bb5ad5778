// The physics-informed distillation loss: the student's trajectory must satisfy the teacher's
// probability-flow ODE x - t dx/dt = D(x, t), with dx/dt taken by a finite difference between neighbouring
// grid points.
#pragma once
#include "pidistill/edm/denoiser.h"
#include "pidistill/metrics/lpips.h"
#include "pidistill/pid/pid_grid.h"
#include "pidistill/pid/student.h"
#include "pidistill/util/autocast.h"

#include <ATen/core/Tensor.h>

#include <string>

namespace pidistill {

enum class PidDistance { L2, L1, LPIPS, Huber };
PidDistance pid_distance_from_string(
    const std::string& name);  // "l2" | "l1" | "lpips" | "huber"; Error otherwise
std::string to_string(PidDistance distance);

struct PidLossConfig {
  PidGrid grid;                            // N, the sigma range and the last-index pairing.
  PidDistance distance = PidDistance::L2;  // The paper uses lpips for images, l2 for the theory.
  double huber_c = 0;            // Pseudo-Huber constant c; 0 = iCT's 0.00054 sqrt(dim of one sample).
  const Lpips* lpips = nullptr;  // Required for PidDistance::LPIPS (not owned).
  // Both student evaluations (at t_i and t_j) as one call on a batch of 2B: the same function and gradients
  // (per-sample network, no batch statistics), half the kernel launches; off = two calls, as the official code.
  bool joint_student_call = false;
  // Mixed precision of the student's and the teacher's networks (--precision); the finite difference, the
  // distance and the gradients' accumulation stay in the latents' dtype.
  Precision student_precision = Precision::FP32;
  Precision teacher_precision = Precision::FP32;
};

struct PidLossOutput {
  at::Tensor indices, indices2;  // i and its neighbour j, int64 [B]
  at::Tensor t, t2;              // t_i, t_j: [B]
  at::Tensor y_hat, y_hat_dt;    // x_theta(z, t_i), x_theta(z, t_j), with gradients: [B, ...]
  at::Tensor dydx;               // (y_hat - y_hat_dt) / (t_i - t_j)
  at::Tensor target;             // y_hat - t_i dydx, the ODE's left-hand side
  at::Tensor teacher_pred;       // D(y_hat, t_i), no gradient
  at::Tensor loss;               // per-sample distance(target, teacher_pred), weight 1: [B]
};

// One evaluation of the loss for given latents z: [B, ...] and grid indices: int64 [B] (see sample_indices).
// class_labels: [B, label_dim] one-hot given to both student and teacher, or undefined.
// The teacher runs under no-grad; only the student's parameters receive gradients from loss.
PidLossOutput pid_loss(const Student& student, Denoiser& teacher, const at::Tensor& z,
                       const at::Tensor& indices, const PidLossConfig& config,
                       const at::Tensor& class_labels = {});

// distance(target, pred) per sample [B], as PID computes it (lpips: bilinear resize to 224 when smaller than
// 256, then (x+1)/2, then LPIPS(target, pred)).
at::Tensor pid_distance(const at::Tensor& target, const at::Tensor& pred, const PidLossConfig& config);

}  // namespace pidistill
