// The --N-start discretisation schedule: the refinement sequence, nesting of the refined grids, the
// schedule switched off, and its one-line errors.
#include "pidistill/pid/grid_schedule.h"
#include "pidistill/pid/pid_grid.h"
#include "test_common.h"

#include <ATen/ATen.h>

#include <vector>

using namespace pidistill;
using pidistill::test::expect_error;

TEST(PidGridSchedule, RefinesToTwoNMinusOneThenSwitchesToN) {
  std::vector<int64_t> sizes;
  for (int64_t step = 0; step < 800; step += 100) sizes.push_back(grid_size_at(step, 250, 8, 100));
  EXPECT_EQ(sizes, (std::vector<int64_t>{8, 15, 29, 57, 113, 225, 250, 250}));
  // Refinement happens at multiples of K, not between them.
  EXPECT_EQ(grid_size_at(99, 250, 8, 100), 8);
  EXPECT_EQ(grid_size_at(100, 250, 8, 100), 15);
  EXPECT_EQ(grid_size_at(599, 250, 8, 100), 225);
  EXPECT_EQ(grid_size_at(1000000000000, 250, 8, 100), 250);
  // N reached exactly by refinement: 8 -> 15 -> 29, N = 29.
  EXPECT_EQ(grid_size_at(200, 29, 8, 100), 29);
  EXPECT_EQ(grid_size_at(5000, 29, 8, 100), 29);
  EXPECT_EQ(grid_size_at(0, 250, 250, 1), 250);  // N_start = N: nothing to refine
}

TEST(PidGridSchedule, OffReturnsN) {
  for (int64_t step : {0, 1, 12345}) EXPECT_EQ(grid_size_at(step, 250, 0, 0), 250);
}

TEST(PidGridSchedule, RefinedGridsAreNested) {
  // Karras points of the n-point grid are points 2i of the (2n-1)-point grid.
  PidGrid coarse, fine;
  coarse.N = 15;
  fine.N = 29;
  auto i = at::arange(15, at::kLong);
  EXPECT_CLOSE(idx2sigmas(i, coarse, at::kDouble), idx2sigmas(2 * i, fine, at::kDouble), 1e-13);
}

TEST(PidGridSchedule, BadArgumentsAreOneLineErrors) {
  expect_error([] { grid_size_at(0, 250, 1, 100); }, {"--N-start", "[2,"});
  expect_error([] { grid_size_at(0, 250, 251, 100); }, {"--N-start", "250"});
  expect_error([] { grid_size_at(0, 250, 8, 0); }, {"--N-refine-every", ">= 1"});
  expect_error([] { validate_grid_schedule(250, 8, -3); }, {"--N-refine-every"});
  expect_error([] { validate_grid_schedule(250, 0, 100); }, {"--N-refine-every", "--N-start"});
  EXPECT_NO_THROW(validate_grid_schedule(250, 0, 0));
}
