#include "pidistill/pid/student_file.h"

#include "pidistill/util/error.h"

#include <ATen/ATen.h>
#include <torch/torch.h>

#include <cmath>
#include <cstdio>
#include <string>

namespace pidistill {

static std::string exact(double v) {  // round-trippable decimal for metadata
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

void save_student(const std::string& path, const Student& student, const std::string& teacher_precond,
                  const std::map<std::string, std::string>& extra) {
  auto meta = extra;
  meta["pid_student"] = "1";
  meta["T"] = exact(student.constants.T);
  meta["sigma_min"] = exact(student.constants.sigma_min);
  meta["sigma_data"] = exact(student.constants.sigma_data);
  meta["c_in"] = exact(student.constants.c_in());
  meta["student_formula"] =
      "x = (t/T) (T z) + (1 - t/T) F(c_in T z, ln(t)/4 [, class]); one call at t = sigma_min";
  save_net(path, *student.F, teacher_precond, meta);
}

bool is_student_file(const LoadedNet& loaded) {
  auto it = loaded.metadata.find("pid_student");
  return it != loaded.metadata.end() && it->second == "1";
}

static double meta_number(const LoadedNet& loaded, const std::string& key, double fallback) {
  auto it = loaded.metadata.find(key);
  if (it == loaded.metadata.end()) return fallback;
  try {
    size_t used = 0;
    double v = std::stod(it->second, &used);
    if (used != it->second.size()) throw std::invalid_argument("trailing text");
    return v;
  } catch (const std::exception&) {
    fail("student file", "metadata '" + key + "' is not a number: '" + it->second + "'");
  }
}

Student student_from(const LoadedNet& loaded) {
  StudentConstants constants;
  if (is_student_file(loaded)) {
    constants.T = meta_number(loaded, "T", constants.T);
    constants.sigma_min = meta_number(loaded, "sigma_min", constants.sigma_min);
    constants.sigma_data = meta_number(loaded, "sigma_data", constants.sigma_data);
    return Student(loaded.net, constants);
  }
  return Student(clone_net(*loaded.net), constants);
}

at::Tensor one_call_generate(const Student& student, const at::Tensor& z, const at::Tensor& class_labels,
                             double t) {
  torch::NoGradGuard no_grad;
  // 0 means "the images" (sigma_min); anything else must be a real time: -5 or NaN silently meaning sigma_min
  // would hide a typo.
  if (t != 0 && !(std::isfinite(t) && t >= student.constants.sigma_min * (1 - 1e-9) &&
                  t <= student.constants.T * (1 + 1e-9)))
    fail("--t", "must lie in [sigma_min, T] = [" + std::to_string(student.constants.sigma_min) + ", " +
                    std::to_string(student.constants.T) + "] (or 0 for sigma_min), got " + std::to_string(t));
  const double t_eval = t != 0 ? t : student.constants.sigma_min;
  auto t_b = at::full({z.size(0)}, t_eval, z.options().dtype(at::kDouble));  // [B]
  return student(z, t_b, class_labels).clamp(-1, 1);
}

}  // namespace pidistill
