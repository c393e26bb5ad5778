// `pidistill trajectory`: PID's student *is* a solution curve of the teacher's ODE, so show it as one: for a
// few seeds, the student x_theta(z, t) at several t (one call each) above the teacher's Heun trajectory at
// the same t, and print how far apart they are at each t as one JSON line.
#include "cli/commands.h"
#include "pidistill/edm/precond.h"
#include "pidistill/edm/sampler.h"
#include "pidistill/nets/net_file.h"
#include "pidistill/pid/student_file.h"
#include "pidistill/util/error.h"
#include "pidistill/util/image_io.h"
#include "pidistill/util/seeds.h"

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <iostream>
#include <memory>

namespace pidistill::cli {
namespace {

struct TrajectoryOptions {
  std::string student, teacher, out;
  std::string seeds = "0-3";                               // one pair of rows per seed
  std::vector<double> times = {80, 20, 5, 1, 0.2, 0.002};  // columns
  int substeps = 8;                                        // teacher Heun steps between two columns
};

void run_trajectory(const TrajectoryOptions& o) {
  LoadedNet student_file = load_net(o.student), teacher_file = load_net(o.teacher);
  const NetConfig& c = teacher_file.config;
  if (c.img_channels != student_file.config.img_channels ||
      c.img_resolution != student_file.config.img_resolution)
    fail(o.student, "image shape differs from the teacher's");
  if (c.label_dim > 0) fail(o.teacher, "class-conditional teachers are not supported by trajectory yet");
  student_file.net->eval();
  teacher_file.net->eval();
  Student student = student_from(student_file);  // a teacher file here gives the student at initialisation
  for (double t : o.times)
    if (!(t >= student.constants.sigma_min * (1 - 1e-9) && t <= student.constants.T * (1 + 1e-9)))
      fail("--times", "every time must lie in [sigma_min, T] = [" +
                          std::to_string(student.constants.sigma_min) + ", " +
                          std::to_string(student.constants.T) + "]");
  const std::vector<int64_t> seeds = parse_seeds(o.seeds);
  at::Tensor z = latents_for_seeds(seeds, c.img_channels, c.img_resolution);  // [S, C, H, W]
  auto teacher_precond = precond_for(teacher_file);                           // the file's type and constants
  Precond& teacher = *teacher_precond;
  std::vector<at::Tensor> ode = heun_at_times(teacher, z, {}, o.times, o.substeps);  // each [S, C, H, W] f64

  at::NoGradGuard no_grad;
  std::vector<at::Tensor> rows;  // per seed: student row then teacher row, columns = times
  nlohmann::json rms = nlohmann::json::array();
  std::vector<at::Tensor> student_cols, teacher_cols;
  for (size_t k = 0; k < o.times.size(); ++k) {
    const double t = o.times[k];
    at::Tensor x_student = student(z, at::scalar_tensor(t, at::kDouble)).to(at::kDouble);  // [S, C, H, W]
    rms.push_back((x_student - ode[k]).pow(2).mean().sqrt().item<double>());
    // Why the scale: x(t) has standard deviation about sqrt(1 + t^2); dividing by it shows every column in
    // [-1, 1].
    const double scale = 1 / std::sqrt(1 + t * t);
    student_cols.push_back((x_student * scale).clamp(-1, 1).to(at::kFloat));
    teacher_cols.push_back((ode[k] * scale).clamp(-1, 1).to(at::kFloat));
  }
  std::vector<at::Tensor> tiles;  // row-major: for each seed, the student's columns then the teacher's
  for (size_t s = 0; s < seeds.size(); ++s) {
    for (auto& col : student_cols) tiles.push_back(col[s]);
    for (auto& col : teacher_cols) tiles.push_back(col[s]);
  }
  write_png_grid(o.out, at::stack(tiles), int(o.times.size()));
  nlohmann::json line = {{"out", o.out},
                         {"t", o.times},
                         {"rms_student_vs_teacher", rms},
                         {"seeds", o.seeds},
                         {"teacher_substeps", o.substeps}};
  std::cout << line.dump() << std::endl;
}

}  // namespace

void add_trajectory_command(CLI::App& app) {
  auto o = std::make_shared<TrajectoryOptions>();
  CLI::App* cmd = app.add_subcommand(
      "trajectory", "PID student at several t (one call each) above the teacher's Heun trajectory, one PNG");
  cmd->add_option("--student", o->student,
                  "PID student file (a teacher file gives the student at initialisation)")
      ->required();
  cmd->add_option("--teacher", o->teacher, "Teacher network file")->required();
  cmd->add_option("--out", o->out, "Output PNG: per seed a student row above a teacher row")->required();
  cmd->add_option("--seeds", o->seeds, "Seeds")->capture_default_str();
  cmd->add_option("--times", o->times, "Times t (columns), decreasing")
      ->delimiter(',')
      ->capture_default_str();
  cmd->add_option("--substeps", o->substeps, "Teacher Heun steps between two columns")->capture_default_str();
  cmd->callback([o] { run_trajectory(*o); });
}

}  // namespace pidistill::cli
