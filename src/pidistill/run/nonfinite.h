// The non-finite policy of both trainers: a step whose loss (or gradient) is not finite is skipped (no
// optimiser, EMA or sampler update) but counted as done, and the run aborts after too many in a row.
#pragma once
#include <cstdint>

namespace pidistill {

struct NonFiniteCount {
  int64_t total = 0;   // steps skipped so far (resumed runs included: checkpointed)
  int64_t in_row = 0;  // consecutive skipped steps up to now

  // Records one step; true when it was the max_in_row-th non-finite step in a row and the run must abort.
  bool record(bool finite, int64_t max_in_row) {
    if (finite) {
      in_row = 0;
      return false;
    }
    ++total;
    return ++in_row >= max_in_row;
  }
};

}  // namespace pidistill
