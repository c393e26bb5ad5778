// Minibatch sampling and flips; every random draw goes through the caller's generator for resumable runs.
#include "pidistill/data/minibatch.h"

#include <ATen/ATen.h>

#include "pidistill/util/error.h"

namespace pidistill {

at::Tensor sample_indices(int64_t dataset_size, int64_t batch, at::Generator& gen) {
  if (dataset_size <= 0 || batch < 0)
    fail("sample_indices", "need a non-empty dataset and batch >= 0, got size " + std::to_string(dataset_size) +
                               " and batch " + std::to_string(batch));
  return at::randint(0, dataset_size, {batch}, gen, at::TensorOptions().dtype(at::kLong));  // [B]
}

at::Tensor random_xflip(const at::Tensor& images, at::Generator& gen, double p) {
  if (images.dim() != 4) fail("random_xflip", "expected images [B, C, H, W]");
  auto flip = at::rand({images.size(0)}, gen, at::TensorOptions().dtype(at::kFloat)) < p;  // [B] bool, CPU
  auto mask = flip.to(images.device()).view({-1, 1, 1, 1});                                  // [B, 1, 1, 1]
  return at::where(mask, images.flip({3}), images);
}

}  // namespace pidistill
