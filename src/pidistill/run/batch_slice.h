// Which images of a step's global batch this process trains on, and in which micro-batches. The random draws
// of a step are defined for the whole global batch; the loss and its gradient are computed on a slice of it.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace pidistill {

// Images [begin, end) of a global batch.
struct BatchSlice {
  int64_t begin = 0, end = 0;
  int64_t size() const { return end - begin; }
  bool contains(const BatchSlice& other) const { return begin <= other.begin && other.end <= end; }
};

// Process `rank` of `world_size` takes the rank-th of world_size equal parts of a global batch of `batch`
// images (all of it for one process). Error naming --batch unless world_size divides it.
BatchSlice rank_slice(int64_t batch, int rank, int world_size);

// `slice` cut into consecutive micro-batches of `micro` images (0: the whole slice at once). Error naming
// `option` (e.g. "--batch-gpu") unless micro divides the slice.
std::vector<BatchSlice> micro_batches(const BatchSlice& slice, int64_t micro,
                                      const std::string& option = "--batch-gpu");

}  // namespace pidistill
