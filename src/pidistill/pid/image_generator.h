// Images from any network file we read, EDM generate.py's way (one latent and label per seed): a teacher
// through EDM's sampler, a PID student in one call. `pidistill generate` and `pidistill fid` both draw
// through this.
// Stable API (see pidistill/pidistill.h): GeneratorOptions, make_image_generator, generate_images.
#pragma once
#include "pidistill/edm/sampler.h"
#include "pidistill/nets/net_file.h"

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>
#include <vector>

namespace pidistill {

struct GeneratorOptions {
  SamplerConfig sampler;    // teacher only: steps, schedule, solver, churn
  uint64_t churn_seed = 0;  // teacher only: generator of the churn noise (S_churn > 0)
  double t = 0;             // student only: trajectory time; 0 = sigma_min (the images)
  bool as_student = false;  // a teacher file read as the PID student at initialisation (step 0 of distill)
};

struct ImageGenerator {
  // latents [b, C, H, W] float32, class_labels [b, L] one-hot or undefined -> images [b, C, H, W] float64
  std::function<at::Tensor(const at::Tensor& latents, const at::Tensor& class_labels)> sample;
  int nfe = 0;           // network calls per image
  bool student = false;  // a PID student file (one call)
};

// Error if the options do not fit the file's kind (e.g. --t for a teacher).
ImageGenerator make_image_generator(const LoadedNet& loaded, const GeneratorOptions& options);

// One image per seed, as `pidistill generate --seeds` draws them (each seed's own generator gives the latent,
// then the class label of a conditional network), all seeds in one batch: [N, C, H, W] float64 (a student's
// clamped to [-1, 1]). The grid of write_png_grid(path, images.to(at::kFloat)) equals generate's --grid.
at::Tensor generate_images(const LoadedNet& loaded, const std::vector<int64_t>& seeds,
                           const GeneratorOptions& options = {});

// EDM generate.py: each seed's generator draws the latent, then the class label (randint over label_dim). [N]
// int64
at::Tensor labels_for_seeds(const std::vector<int64_t>& seeds, const NetConfig& config);

}  // namespace pidistill
