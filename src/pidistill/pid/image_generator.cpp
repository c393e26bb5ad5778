#include "pidistill/pid/image_generator.h"

#include "pidistill/edm/precond.h"
#include "pidistill/pid/student_file.h"
#include "pidistill/util/error.h"
#include "pidistill/util/seeds.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/core/grad_mode.h>

#include <memory>

namespace pidistill {

ImageGenerator make_image_generator(const LoadedNet& loaded, const GeneratorOptions& o) {
  ImageGenerator g;
  if (is_student_file(loaded) || o.as_student) {
    // A PID student: one network call at t = sigma_min (or --t), clamped to [-1, 1].
    auto student = std::make_shared<Student>(student_from(loaded));
    const double t = o.t;
    g.sample = [student, t](const at::Tensor& latents, const at::Tensor& labels) {
      return one_call_generate(*student, latents, labels, t).to(at::kDouble);
    };
    g.nfe = 1;
    g.student = true;
    return g;
  }
  if (o.t != 0)
    fail("--t", "only a PID student file (pidistill distill's student-final.safetensors) takes --t");
  auto precond = precond_for(loaded);  // the file's type and constants
  auto gen = std::make_shared<at::Generator>(at::detail::createCPUGenerator(o.churn_seed));
  SamplerConfig config = o.sampler;
  g.sample = [precond, gen, config](const at::Tensor& latents, const at::Tensor& labels) {
    return edm_sampler(*precond, latents, labels, config, gen.get());
  };
  g.nfe = sampler_nfe(config);
  return g;
}

at::Tensor generate_images(const LoadedNet& loaded, const std::vector<int64_t>& seeds,
                           const GeneratorOptions& options) {
  const NetConfig& c = loaded.config;
  at::Tensor latents = latents_for_seeds(seeds, c.img_channels, c.img_resolution);  // [N, C, H, W] f32
  at::Tensor labels;                                                                 // [N, L] or undefined
  if (c.label_dim > 0) labels = at::one_hot(labels_for_seeds(seeds, c), c.label_dim).to(at::kDouble);
  at::NoGradGuard no_grad;
  return make_image_generator(loaded, options).sample(latents, labels);
}

at::Tensor labels_for_seeds(const std::vector<int64_t>& seeds, const NetConfig& c) {
  std::vector<int64_t> classes;
  for (int64_t seed : seeds) {
    auto gen = at::detail::createCPUGenerator(static_cast<uint64_t>(seed));
    at::randn({c.img_channels, c.img_resolution, c.img_resolution}, gen);
    classes.push_back(at::randint(c.label_dim, {1}, gen, at::kLong).item<int64_t>());
  }
  return at::tensor(classes, at::kLong);
}

}  // namespace pidistill
