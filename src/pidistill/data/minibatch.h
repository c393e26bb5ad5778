// Minibatch helpers: uniform index sampling and random horizontal flips, both from an explicit generator.
#pragma once
#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>

#include <cstdint>

namespace pidistill {

// batch indices drawn uniformly with replacement from [0, dataset_size): int64 [batch] on CPU.
at::Tensor sample_indices(int64_t dataset_size, int64_t batch, at::Generator& gen);

// Mirrors each image left-right with probability p (EDM's --xflip doubles the set with mirrored copies; drawing
// the flip per sample gives the same distribution). images: [B, C, H, W]; returns a new tensor.
at::Tensor random_xflip(const at::Tensor& images, at::Generator& gen, double p = 0.5);

}  // namespace pidistill
