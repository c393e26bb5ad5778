// `pidistill compare`: the teacher's EDM sampler and one or more PID students' single call on the same seeds,
// side by side in one PNG (teacher left, then each student in the order given), the picture the demo ends
// with.
#include "cli/commands.h"
#include "pidistill/edm/precond.h"
#include "pidistill/edm/sampler.h"
#include "pidistill/nets/net_file.h"
#include "pidistill/pid/student_file.h"
#include "pidistill/util/error.h"
#include "pidistill/util/image_io.h"
#include "pidistill/util/seeds.h"

#include <ATen/ATen.h>

#include <cmath>
#include <cstdio>
#include <memory>
#include <vector>

namespace pidistill::cli {
namespace {

struct CompareOptions {
  std::string teacher, out;
  std::vector<std::string> students;  // one panel each, right of the teacher
  std::string seeds = "0-15";         // one image per seed in each half
  int steps = 18;                     // Heun steps of the teacher (2 * steps - 1 network calls)
};

// images: [B, C, H, W] -> one image [C, rows*H, cols*W], row-major.
at::Tensor tile(const at::Tensor& images, int64_t cols) {
  const int64_t B = images.size(0), C = images.size(1), H = images.size(2), W = images.size(3);
  const int64_t rows = (B + cols - 1) / cols;
  auto padded = at::cat({images, at::full({rows * cols - B, C, H, W}, -1.0, images.options())});
  return padded.reshape({rows, cols, C, H, W}).permute({2, 0, 3, 1, 4}).reshape({C, rows * H, cols * W});
}

void run_compare(const CompareOptions& o) {
  LoadedNet teacher_file = load_net(o.teacher);
  const NetConfig& c = teacher_file.config;
  std::vector<LoadedNet> student_files;
  for (const auto& path : o.students) {
    student_files.push_back(load_net(path));
    const LoadedNet& s = student_files.back();
    if (!is_student_file(s))
      fail(path,
           "not a PID student file (no metadata pid_student=1); hint: pass distill's "
           "student-final.safetensors");
    if (c.img_channels != s.config.img_channels || c.img_resolution != s.config.img_resolution)
      fail(path, "image shape differs from the teacher's");
    s.net->eval();
  }
  teacher_file.net->eval();
  const std::vector<int64_t> seeds = parse_seeds(o.seeds);
  auto z = latents_for_seeds(seeds, c.img_channels, c.img_resolution);  // [S, C, H, W]
  at::Tensor labels;
  if (c.label_dim > 0) {
    std::vector<int64_t> classes;
    for (int64_t s : seeds) classes.push_back(s % c.label_dim);
    labels = at::one_hot(at::tensor(classes, at::kLong), c.label_dim).to(at::kDouble);
  }
  at::NoGradGuard no_grad;
  auto teacher_precond = precond_for(teacher_file);  // the file's type and constants
  Precond& teacher = *teacher_precond;
  SamplerConfig sampler;
  sampler.num_steps = o.steps;
  const int64_t cols = static_cast<int64_t>(std::ceil(std::sqrt(static_cast<double>(seeds.size()))));
  std::vector<at::Tensor> panels = {
      tile(heun_sample(teacher, z, labels, sampler).clamp(-1, 1).to(at::kFloat), cols)};
  for (const auto& s : student_files)
    panels.push_back(
        tile(one_call_generate(student_from(s), z, labels).to(at::kFloat), cols));  // [C, rows*H, cols*W]
  std::vector<at::Tensor> row;
  for (size_t i = 0; i < panels.size(); ++i) {
    if (i > 0)
      row.push_back(at::ones({panels[0].size(0), panels[0].size(1), c.img_resolution / 2},
                             panels[0].options()));  // white gap
    row.push_back(panels[i]);
  }
  write_png_grid(o.out, at::cat(row, 2).unsqueeze(0), 1);
  std::printf("wrote %s: teacher %d calls (left), then %zu student(s) at 1 call, %zu seeds\n", o.out.c_str(),
              sampler_nfe(sampler), student_files.size(), seeds.size());
}

}  // namespace

void add_compare_command(CLI::App& app) {
  auto o = std::make_shared<CompareOptions>();
  CLI::App* cmd =
      app.add_subcommand("compare", "Teacher (EDM Heun) vs PID student (one call), same seeds, one PNG");
  cmd->add_option("--teacher", o->teacher, "Teacher network file")->required();
  cmd->add_option("--student", o->students,
                  "PID student file (distill's student-final.safetensors); repeat for more")
      ->required();
  cmd->add_option("--out", o->out, "Output PNG")->required();
  cmd->add_option("--seeds", o->seeds, "Seeds, e.g. 0-15")->capture_default_str();
  cmd->add_option("--steps", o->steps, "Teacher Heun steps (18 = 35 calls)")->capture_default_str();
  cmd->callback([o] { run_compare(*o); });
}

}  // namespace pidistill::cli
