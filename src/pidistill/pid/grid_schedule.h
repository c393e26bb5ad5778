// The discretisation schedule of `distill --N-start`: a coarse grid refined N -> 2N-1 every K steps up to
// --N, so early steps propagate the boundary condition over few intervals (nested Karras grids).
#pragma once
#include <cstdint>

namespace pidistill {

// Grid size in force at 0-based optimiser step `step` (the step being taken, before it completes).
// N_start = 0: the schedule is off and N is returned. Otherwise N_start for steps [0, K), then 2N-1 after
// each further K steps while that stays <= N; the first refinement that would exceed N gives N itself. A pure
// function of the step, so a resumed run uses the same grids. Error for invalid arguments.
int64_t grid_size_at(int64_t step, int64_t N, int64_t N_start, int64_t refine_every);

// Error naming --N-start / --N-refine-every: N_start must be 0 or in [2, N]; refine_every >= 1 with N_start
// > 0, and 0 without it (a refinement period with no schedule is a mistake, not a no-op).
void validate_grid_schedule(int64_t N, int64_t N_start, int64_t refine_every);

}  // namespace pidistill
