// `pidistill generate`: images from a network file, EDM's generate.py conventions (one latent per seed,
// PNGs). The sampling itself (teacher: EDM's sampler; PID student: one call) is pid/image_generator.h.
#include "cli/cli_util.h"
#include "cli/commands.h"
#include "pidistill/edm/sampler.h"
#include "pidistill/nets/net_file.h"
#include "pidistill/pid/image_generator.h"
#include "pidistill/util/error.h"
#include "pidistill/util/image_io.h"
#include "pidistill/util/progress.h"
#include "pidistill/util/seeds.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include <cstdio>
#include <filesystem>
#include <functional>
#include <iostream>
#include <limits>
#include <memory>

namespace pidistill::cli {
namespace {

struct GenerateOptions {
  std::string net;             // --net: network file
  std::string seeds = "0-63";  // --seeds: one image per seed
  std::string grid;            // --grid: one PNG grid of all images
  std::string outdir;          // --outdir: one PNG per image, seed%06d.png
  std::string latents;         // --latents: safetensors with `latents` [N, C, H, W] (instead of seeds)
  std::string out;             // --out: safetensors with `x_final` [N, C, H, W] float64
  SamplerConfig sampler;       // --steps, --sigma-min, ..., --solver
  std::string solver = "heun";
  int class_idx = -1;         // --class: every image of this class; -1 = random from each seed
  bool f64 = false;           // --f64: the network in float64
  int64_t batch = 64;         // --batch: images per network call
  uint64_t sampler_seed = 0;  // --churn-seed: generator of the churn noise (S_churn > 0)
  double t = 0;  // --t: PID student only, the trajectory time to evaluate; 0 = sigma_min (the images)
  bool as_student = false;  // --as-student: a teacher file as the PID student at initialisation
  std::string device = "cpu";  // --device: where the network runs (cpu or cuda[:i]); images come back to the CPU
};

void run_generate(const GenerateOptions& o) {
  if (o.grid.empty() && o.outdir.empty() && o.out.empty())
    fail("generate",
         "no output requested; hint: give --grid FILE.png, --outdir DIR and/or --out FILE.safetensors");
  if (o.batch <= 0) fail("--batch", "must be positive");
  const at::Device device = parse_device(o.device);
  LoadedNet loaded = load_net(o.net);
  const NetConfig& c = loaded.config;
  loaded.net->to(device, o.f64 ? at::kDouble : at::kFloat);
  loaded.net->eval();

  at::Tensor latents, classes;  // [N, C, H, W] float32, [N] int64
  std::vector<int64_t> seeds;
  if (!o.latents.empty()) {
    TensorFile file = read_safetensors(o.latents);
    latents = file.get("latents");
    if (latents.dim() != 4 || latents.size(1) != c.img_channels || latents.size(2) != c.img_resolution ||
        latents.size(3) != c.img_resolution)
      fail(o.latents, "tensor 'latents' must be [N, " + std::to_string(c.img_channels) + ", " +
                          std::to_string(c.img_resolution) + ", " + std::to_string(c.img_resolution) + "]");
    for (int64_t i = 0; i < latents.size(0); ++i) seeds.push_back(i);
    if (c.label_dim > 0 && o.class_idx < 0) {
      if (!file.has("class_labels"))
        fail(o.latents,
             "the network is class-conditional: give --class N or a tensor 'class_labels' [N] (int64)");
      classes = file.get("class_labels").to(at::kLong).flatten();
    }
  } else {
    seeds = parse_seeds(o.seeds);
    latents = latents_for_seeds(seeds, c.img_channels, c.img_resolution);
    if (c.label_dim > 0 && o.class_idx < 0) classes = labels_for_seeds(seeds, c);
  }
  const int64_t n = latents.size(0);
  if (c.label_dim > 0 && o.class_idx >= 0) {
    if (o.class_idx >= c.label_dim)
      fail("--class", std::to_string(o.class_idx) + " is out of range; the network has " +
                          std::to_string(c.label_dim) + " classes");
    classes = at::full({n}, o.class_idx, at::kLong);
  } else if (c.label_dim == 0 && o.class_idx >= 0) {
    fail("--class", "the network is unconditional");
  }
  if (classes.defined() && (classes.numel() != n || classes.min().item<int64_t>() < 0 ||
                            classes.max().item<int64_t>() >= c.label_dim))
    fail(o.latents, "'class_labels' must hold " + std::to_string(n) + " classes in [0, " +
                        std::to_string(c.label_dim) + ")");

  GeneratorOptions gopts;
  gopts.sampler = o.sampler;
  gopts.churn_seed = o.sampler_seed;
  gopts.t = o.t;
  gopts.as_student = o.as_student;
  auto sample = make_image_generator(loaded, gopts).sample;
  std::vector<at::Tensor> images;
  Progress progress("generate", n, "img");
  for (int64_t begin = 0; begin < n; begin += o.batch) {
    int64_t end = std::min(n, begin + o.batch);
    at::Tensor labels;
    if (classes.defined())
      labels = at::one_hot(classes.slice(0, begin, end), c.label_dim).to(device, at::kDouble);  // [b, L]
    images.push_back(sample(latents.slice(0, begin, end).to(device), labels).to(at::kCPU));     // [b, C, H, W] f64
    progress.update(end);
  }
  progress.finish();
  at::Tensor x = at::cat(images);  // [N, C, H, W] float64

  if (!o.out.empty()) write_safetensors(o.out, {{"x_final", x}}, {{"net", o.net}, {"seeds", o.seeds}});
  if (!o.grid.empty()) write_png_grid(o.grid, x.to(at::kFloat));
  if (!o.outdir.empty()) {
    std::filesystem::create_directories(o.outdir);
    auto pixels = to_uint8(x.to(at::kFloat));  // [N, H, W, C]
    for (int64_t i = 0; i < n; ++i) {
      char name[32];
      std::snprintf(name, sizeof(name), "%06lld.png", static_cast<long long>(seeds[i]));
      write_png((std::filesystem::path(o.outdir) / name).string(), pixels[i]);
    }
  }
  std::cout << "Generated " << n << " images" << (o.grid.empty() ? "" : " -> " + o.grid)
            << (o.outdir.empty() ? "" : " -> " + o.outdir + "/") << (o.out.empty() ? "" : " -> " + o.out)
            << "\n";
}

}  // namespace

void add_generate_command(CLI::App& app) {
  auto o = std::make_shared<GenerateOptions>();
  CLI::App* cmd = app.add_subcommand(
      "generate", "Generate images with EDM's sampler, or one call of a PID student (one latent per seed)");
  cmd->add_option("--net", o->net, "Network file (.safetensors with config metadata)")->required();
  cmd->add_option("--seeds", o->seeds, "Seeds, e.g. 0-63 or 1,5,9-12")->capture_default_str();
  cmd->add_option("--grid", o->grid, "Write all images as one PNG grid");
  cmd->add_option("--outdir", o->outdir, "Write one PNG per image (SEED.png)");
  cmd->add_option("--latents", o->latents, "Use the tensor 'latents' [N, C, H, W] of this safetensors file");
  cmd->add_option("--out", o->out, "Write the images as tensor 'x_final' (float64) to this safetensors file");
  cmd->add_option("--steps", o->sampler.num_steps, "Number of sampling steps")->capture_default_str();
  cmd->add_option("--sigma-min", o->sampler.sigma_min, "Lowest noise level")->capture_default_str();
  cmd->add_option("--sigma-max", o->sampler.sigma_max, "Highest noise level")->capture_default_str();
  cmd->add_option("--rho", o->sampler.rho, "Time step exponent")->capture_default_str();
  cmd->add_option("--S-churn", o->sampler.S_churn, "Stochasticity strength")->capture_default_str();
  cmd->add_option("--S-min", o->sampler.S_min, "Stochastic sampling: lowest noise level")
      ->capture_default_str();
  cmd->add_option("--S-max", o->sampler.S_max, "Stochastic sampling: highest noise level");
  cmd->add_option("--S-noise", o->sampler.S_noise, "Stochastic sampling: noise inflation")
      ->capture_default_str();
  cmd->add_option("--churn-seed", o->sampler_seed, "Seed of the churn noise")->capture_default_str();
  cmd->add_option("--solver", o->solver, "ODE solver: heun | euler")->capture_default_str();
  cmd->add_option("--class", o->class_idx, "Class of every image (default: random per seed)");
  cmd->add_flag("--f64", o->f64, "Run the network in float64 (the sampler always works in float64)");
  cmd->add_option("--batch", o->batch, "Images per batch")->capture_default_str();
  cmd->add_option("--device", o->device, "cpu or cuda[:i]")->capture_default_str();
  cmd->add_option("--t", o->t,
                  "PID student: evaluate the trajectory at this t in [sigma_min, 80] (default sigma_min)");
  cmd->add_flag(
      "--as-student", o->as_student,
      "Read a teacher file as the PID student at initialisation (what distill starts from), one call");
  cmd->callback([o] {
    GenerateOptions resolved = *o;
    resolved.sampler.solver = solver_from_string(o->solver);
    run_generate(resolved);
  });
}

}  // namespace pidistill::cli
