// EDM's seed lists ("0-63", "1,5,9-12") and per-image latents drawn from each image's own seed.
// Stable API (see pidistill/pidistill.h): parse_seeds, latents_for_seeds (the latents are EDM's, bit for bit).
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>
#include <vector>

namespace pidistill {

std::vector<int64_t> parse_seeds(const std::string& text);  // Error on malformed text

// latents[i] = randn([C, H, W]) from a CPU generator seeded with seeds[i], as torch.Generator().manual_seed
// followed by torch.randn does; so an image does not depend on the batch it was drawn in.
at::Tensor latents_for_seeds(const std::vector<int64_t>& seeds, int channels, int resolution);

}  // namespace pidistill
