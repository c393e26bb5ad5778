// Numbers a user mistypes are refused in one line instead of being silently replaced or wrapped around.
#include "pidistill/io/safetensors.h"
#include "test_cli_util.h"

#include <ATen/ATen.h>

#include <cmath>
#include <limits>

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
  expect_refused("generate --net " + test::quoted(kTeacher) + " --device gpu --seeds 0 --grid " + out, "--device");
  expect_refused("train --data " + kData + " --sample-count -1 --dry-run", "--sample-count");
  expect_refused("--conv fft distill --teacher " + test::quoted(kTeacher) + " --loss l2 --dry-run",
                 "--conv: unknown convolution algorithm 'fft'");
  expect_refused("distill --teacher " + test::quoted(kTeacher) + " --loss l2 --lr inf --dry-run", "--lr");
  expect_refused("distill --teacher " + test::quoted(kTeacher) + " --loss l2 --seed -1 --dry-run", "--seed");
  expect_refused("train --data " + kData + " --seed -1 --dry-run", "--seed");
  expect_refused("train --data " + kData + " --cbase -5 --dry-run", "--cbase");
  expect_refused("train --data " + kData + " --blocks -1 --dry-run", "--blocks");
  expect_refused("train --data " + kData + " --pad -1 --dry-run", "--pad");
  expect_refused("train --data " + kData + " --lr inf --dry-run", "--lr");
  // denoise at sigma 0, -1, NaN or inf used to exit 0 with all-NaN output.
  for (double sigma : {0.0, -1.0, std::nan(""), std::numeric_limits<double>::infinity()}) {
    const std::string in = scratch_dir() + "/sigma.safetensors";
    write_safetensors(in,
                      {{"x", at::zeros({2, 1, 32, 32})}, {"sigma", at::tensor({1.0, sigma}, at::kFloat)}});
    expect_refused("denoise --net " + test::quoted(kTeacher) + " --in " + test::quoted(in) + " --out " +
                       test::quoted(scratch_dir() + "/d.safetensors"),
                   "'sigma' must hold finite noise levels > 0");
  }
}

}  // namespace
}  // namespace pidistill::test
