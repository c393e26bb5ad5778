// Improved precision and recall (Kynkäänniemi et al. 2019): k-NN balls around feature vectors decide which
// generated samples fall on the real manifold (precision) and which real samples the generator covers (recall).
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>

namespace pidistill {

struct PrecisionRecall {
  double precision = 0, recall = 0;
};

// real: [Nr, D], fake: [Nf, D]. A sample of one set is covered when it lies within the distance of some sample of
// the other set to that sample's k-th nearest neighbour (itself excluded) in its own set. Distances in float32,
// `batch` rows at a time, so memory stays O(batch * N).
PrecisionRecall precision_recall(const at::Tensor& real, const at::Tensor& fake, int k = 3, int64_t batch = 1024);

}  // namespace pidistill
