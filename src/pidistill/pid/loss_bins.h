// Per-noise-level loss tallies: grid index i of an N-point grid falls in bin floor(8 i / N), so bin 0 holds
// the largest noise levels (t near T) and bin 7 the smallest; stats.jsonl's loss_bins and --index-sampling
// loss.
#pragma once
#include <ATen/core/Tensor.h>

#include <array>
#include <cstdint>

namespace pidistill {

inline constexpr int kLossBins = 8;

// floor(kLossBins * i / N) for 0 <= i < N.
inline int loss_bin(int64_t i, int64_t N) { return static_cast<int>(kLossBins * i / N); }

// Sums and counts of per-sample losses by bin.
struct LossBinTally {
  std::array<double, kLossBins> sum{};
  std::array<int64_t, kLossBins> count{};

  // indices: int64 [B] on any device; losses: [B] per-sample losses (detached, any float dtype and device).
  void add(const at::Tensor& indices, const at::Tensor& losses, int64_t N);
  void add(const LossBinTally& other);
  double mean(int b) const { return count[b] ? sum[b] / static_cast<double>(count[b]) : 0.0; }
  void clear() { *this = LossBinTally{}; }
};

}  // namespace pidistill
