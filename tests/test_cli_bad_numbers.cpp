// Numbers a user mistypes are refused in one line instead of being silently replaced or wrapped around.
#include "test_cli_util.h"

namespace pidistill::test {
namespace {

const std::string kTeacher =
    std::string(PIDISTILL_SOURCE_DIR) + "/models/fashion-mnist-ddpmpp-teacher.safetensors";
const std::string kData = "/usr/share/datasets/fashion-mnist";

void expect_refused(const std::string& args, const std::string& words) {
  CliResult r = run_cli(args);
  EXPECT_ONE_LINE_ERROR(r);
  EXPECT_NE(r.output.find(words), std::string::npos) << args << " -> " << r.output;
}

TEST(CliBadNumbers, AreOneLineErrors) {
  const std::string out = test::quoted(scratch_dir() + "/x.png");
  // A student's trajectory time: -5 or NaN used to mean sigma_min; --t on a teacher file stays refused.
  expect_refused("generate --net " + test::quoted(kTeacher) + " --as-student --t -5 --seeds 0 --grid " + out,
                 "--t");
  expect_refused("generate --threads 1000 --net " + test::quoted(kTeacher) + " --seeds 0 --grid " + out,
                 "--threads");
  expect_refused("distill --teacher " + test::quoted(kTeacher) + " --loss l2 --lr inf --dry-run", "--lr");
  expect_refused("distill --teacher " + test::quoted(kTeacher) + " --loss l2 --seed -1 --dry-run", "--seed");
  expect_refused("train --data " + kData + " --seed -1 --dry-run", "--seed");
  expect_refused("train --data " + kData + " --cbase -5 --dry-run", "--cbase");
  expect_refused("train --data " + kData + " --blocks -1 --dry-run", "--blocks");
  expect_refused("train --data " + kData + " --pad -1 --dry-run", "--pad");
  expect_refused("train --data " + kData + " --lr inf --dry-run", "--lr");
}

}  // namespace
}  // namespace pidistill::test
