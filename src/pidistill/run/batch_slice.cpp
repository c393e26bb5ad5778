#include "pidistill/run/batch_slice.h"

#include "pidistill/util/error.h"

namespace pidistill {

BatchSlice rank_slice(int64_t batch, int rank, int world_size) {
  if (world_size < 1 || rank < 0 || rank >= world_size)
    fail("rank", std::to_string(rank) + " is not a rank of a world of " + std::to_string(world_size));
  if (batch <= 0 || batch % world_size != 0)
    fail("--batch", std::to_string(batch) + " images cannot be split evenly over " +
                        std::to_string(world_size) + " processes; hint: a multiple of the world size");
  const int64_t per_rank = batch / world_size;
  return {rank * per_rank, (rank + 1) * per_rank};
}

std::vector<BatchSlice> micro_batches(const BatchSlice& slice, int64_t micro, const std::string& option) {
  if (micro <= 0) micro = slice.size();
  if (micro <= 0 || slice.size() % micro != 0)
    fail(option, std::to_string(micro) + " does not divide the " + std::to_string(slice.size()) +
                     " images of this process's batch");
  std::vector<BatchSlice> out;
  for (int64_t b = slice.begin; b < slice.end; b += micro) out.push_back({b, b + micro});
  return out;
}

}  // namespace pidistill
