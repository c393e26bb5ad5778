#include "pidistill/pid/grid_schedule.h"

#include "pidistill/util/error.h"

#include <string>

namespace pidistill {

void validate_grid_schedule(int64_t N, int64_t N_start, int64_t refine_every) {
  if (N_start == 0) {
    if (refine_every != 0) fail("--N-refine-every", "needs --N-start (the schedule is off without it)");
    return;
  }
  if (N_start < 2 || N_start > N)
    fail("--N-start",
         "must be 0 (off) or in [2, --N = " + std::to_string(N) + "], got " + std::to_string(N_start));
  if (refine_every < 1)
    fail("--N-refine-every", "must be >= 1 with --N-start, got " + std::to_string(refine_every));
}

int64_t grid_size_at(int64_t step, int64_t N, int64_t N_start, int64_t refine_every) {
  validate_grid_schedule(N, N_start, refine_every);
  if (N_start == 0) return N;
  if (step < 0) fail("grid_size_at", "step must be >= 0, got " + std::to_string(step));
  // Why 2n-1: a Karras grid with 2n-1 points holds every point of the n-point grid (the new points fall
  // half-way in rho-space), so what the student learnt on the old grid stays a constraint of the new one.
  int64_t n = N_start;
  for (int64_t r = step / refine_every; r > 0 && n < N; --r) n = 2 * n - 1 <= N ? 2 * n - 1 : N;
  return n;
}

}  // namespace pidistill
