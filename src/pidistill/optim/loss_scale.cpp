#include "pidistill/optim/loss_scale.h"

#include "pidistill/util/error.h"

#include <cmath>

namespace pidistill {

namespace {
constexpr double kMinScale = 0x1p-24;  // smaller than any loss needs; below, halving cannot help any more
constexpr double kMaxScale = 0x1p127;  // the largest power of two a float holds
}  // namespace

bool DynamicLossScale::update(bool gradients_finite) {
  if (!gradients_finite) {
    ++skipped;
    good_in_row = 0;
    scale = std::max(kMinScale, scale / 2);
    return false;
  }
  if (++good_in_row >= growth_interval) {
    good_in_row = 0;
    scale = std::min(kMaxScale, scale * 2);
  }
  return true;
}

void validate_loss_scale_init(double scale) {
  int exponent = 0;
  // frexp gives 0.5 for exact powers of two: unscaling by one is then exact in any floating-point type.
  if (!(std::isfinite(scale) && std::frexp(scale, &exponent) == 0.5 && scale >= kMinScale && scale <= kMaxScale))
    fail("--loss-scale-init", "must be a power of two between 2^-24 and 2^127 (got " + std::to_string(scale) + ")");
}

}  // namespace pidistill
