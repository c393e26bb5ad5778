#include "pidistill/pid/loss_bins.h"

#include "pidistill/util/error.h"

#include <ATen/ATen.h>

namespace pidistill {

void LossBinTally::add(const at::Tensor& indices, const at::Tensor& losses, int64_t N) {
  auto i = indices.to(at::kCPU, at::kLong).contiguous();   // [B]
  auto l = losses.to(at::kCPU, at::kDouble).contiguous();  // [B]
  if (i.numel() != l.numel()) fail("loss bins", "need one loss per grid index");
  const int64_t* ip = i.data_ptr<int64_t>();
  const double* lp = l.data_ptr<double>();
  for (int64_t k = 0; k < i.numel(); ++k) {
    const int b = loss_bin(ip[k], N);
    sum[b] += lp[k];
    ++count[b];
  }
}

void LossBinTally::add(const LossBinTally& other) {
  for (int b = 0; b < kLossBins; ++b) sum[b] += other.sum[b], count[b] += other.count[b];
}

}  // namespace pidistill
