// Dynamic loss scaling for fp16 training (as torch.cuda.amp.GradScaler): the loss is multiplied by a power of
// two before backward so that small fp16 gradients do not flush to zero; a step whose gradients overflow is
// skipped and the scale halved, and after `growth_interval` good steps in a row the scale doubles.
#pragma once
#include <cstdint>

namespace pidistill {

struct DynamicLossScale {
  double scale = 65536;           // 2^16, GradScaler's initial scale; kept a power of two (exact unscaling)
  int64_t growth_interval = 2000;  // good steps in a row before the scale doubles
  int64_t good_in_row = 0;        // good steps since the last change
  int64_t skipped = 0;            // overflowed steps so far (checkpointed)

  // Records one step's gradients (scaled by `scale`); returns whether the optimiser may step.
  bool update(bool gradients_finite);
};

// Error naming --loss-scale-init unless `scale` is a power of two in [2^-24, 2^127].
void validate_loss_scale_init(double scale);

}  // namespace pidistill
