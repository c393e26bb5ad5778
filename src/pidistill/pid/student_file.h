// A trained student as a self-describing weight file (metadata pid_student=1, T, sigma_min, c_in, which EMA),
// and one-call generation from it.
#pragma once
#include "pidistill/nets/net_file.h"
#include "pidistill/pid/student.h"

#include <map>
#include <string>

namespace pidistill {

// save_net with the student's constants in the metadata, plus `extra` (e.g. "ema": "0.999", "teacher": path).
void save_student(const std::string& path, const Student& student, const std::string& teacher_precond,
                  const std::map<std::string, std::string>& extra = {});

bool is_student_file(const LoadedNet& loaded);  // metadata pid_student == "1"

// The student a loaded file describes. A PID student file gives its own constants; a teacher file gives the
// student at initialisation (F = a copy of the teacher's network, the paper's T = 80 and sigma_min = 0.002).
Student student_from(const LoadedNet& loaded);

// One-call generation: x_theta(z, t) clamped to [-1, 1]; t = sigma_min gives the final images.
// z: [B, C, H, W] standard normal; class_labels: [B, label_dim] or undefined. No gradient.
at::Tensor one_call_generate(const Student& student, const at::Tensor& z, const at::Tensor& class_labels = {},
                             double t = 0);  // 0 = the student's sigma_min

}  // namespace pidistill
