// Improved precision/recall as StyleGAN2-ADA/StyleGAN3's metrics/precision_recall.py computes it, batched by
// rows.
#include "pidistill/metrics/precision_recall.h"

#include "pidistill/util/error.h"

#include <ATen/ATen.h>

#include <string>
#include <utility>
#include <vector>

namespace pidistill {

namespace {

// Distance of every row of `manifold` to its k-th nearest neighbour in `manifold`, itself excluded: [N].
at::Tensor kth_radii(const at::Tensor& manifold, int k, int64_t batch) {
  std::vector<at::Tensor> radii;
  for (int64_t i = 0; i < manifold.size(0); i += batch) {
    const at::Tensor rows = manifold.slice(0, i, i + batch);  // [b, D]
    const at::Tensor dist = at::cdist(rows, manifold);        // [b, N]
    // k + 1: the row's zero distance to itself is the first. Why float32 radii: StyleGAN3 rounds them to
    // float16 only to shrink its all-gather across GPUs.
    radii.push_back(std::get<0>(dist.kthvalue(k + 1, /*dim=*/1)));
  }
  return at::cat(radii);
}

// Fraction of `probes` rows within radius_j of some manifold row j.
double covered(const at::Tensor& manifold, const at::Tensor& radii, const at::Tensor& probes, int64_t batch) {
  int64_t hits = 0;
  for (int64_t i = 0; i < probes.size(0); i += batch) {
    const at::Tensor dist = at::cdist(probes.slice(0, i, i + batch), manifold);  // [b, N]
    hits += dist.le(radii.unsqueeze(0)).any(1).sum().item<int64_t>();
  }
  return static_cast<double>(hits) / static_cast<double>(probes.size(0));
}

}  // namespace

PrecisionRecall precision_recall(const at::Tensor& real, const at::Tensor& fake, int k, int64_t batch) {
  const char* where = "precision_recall";
  if (k < 1) fail(where, "k = " + std::to_string(k) + " (the neighbourhood size must be at least 1)");
  if (batch < 1) fail(where, "batch = " + std::to_string(batch) + " (must be at least 1)");
  if (real.dim() != 2 || fake.dim() != 2)
    fail(where, "features must be [N, D]; got real with " + std::to_string(real.dim()) + " dims, fake with " +
                    std::to_string(fake.dim()));
  if (real.size(1) != fake.size(1))
    fail(where, "feature dimensions differ: real " + std::to_string(real.size(1)) + ", fake " +
                    std::to_string(fake.size(1)) + " (features of different detectors?)");
  for (const auto& [name, t] : {std::pair<const char*, const at::Tensor&>{"real", real}, {"fake", fake}})
    if (t.size(0) < k + 1)
      fail(where, std::string(name) + " has " + std::to_string(t.size(0)) +
                      " rows; k = " + std::to_string(k) + " needs at least " + std::to_string(k + 1));
  const at::Tensor r = real.to(at::kFloat).contiguous(),
                   f = fake.to(at::kFloat).contiguous();  // [Nr, D], [Nf, D]
  PrecisionRecall out;
  out.precision = covered(r, kth_radii(r, k, batch), f, batch);
  out.recall = covered(f, kth_radii(f, k, batch), r, batch);
  return out;
}

}  // namespace pidistill
