// `pidistill denoise` against the golden io files: D for EDM/VP/VE preconditioning and the raw network F,
// in float64 (1e-12) and float32 (1e-5), through the binary as a user runs it.
#include "test_cli_util.h"
#include "test_common.h"

#include <string>
#include <vector>

namespace pidistill::test {
namespace {

struct Case {
  std::string net;                  // golden prefix: <net>_weights / <net>_io_{f32,f64}
  std::string precond;              // --precond; empty = the file's default (edm)
  std::vector<std::string> inputs;  // golden io tensors copied into the input file, under their CLI names
  std::string expected;             // golden io tensor the output must match
  bool raw = false;
};

std::string cli_name(const std::string& golden_name) {
  if (golden_name == "F.x_in") return "x_in";
  if (golden_name == "F.noise_labels") return "noise_labels";
  return golden_name;
}

std::string case_name(const Case& c) {
  std::string name = c.net + "_" + (c.precond.empty() ? "default" : c.precond) + "_" + c.expected;
  for (char& ch : name)
    if (!isalnum(static_cast<unsigned char>(ch))) ch = '_';
  return name;
}
// gtest prints a parameter in the test list, and CTest copies that into every test's name: keep it short.
void PrintTo(const Case& c, std::ostream* os) { *os << case_name(c); }

// Runs the case at one precision and compares with the golden file of that precision.
void check(const Case& c, bool f64) {
  const std::string suffix = f64 ? "_f64" : "_f32";
  const TensorFile io = load_golden(c.net + "_io" + suffix + ".safetensors");
  NamedTensors inputs;
  for (const std::string& name : c.inputs) inputs.emplace_back(cli_name(name), io.get(name));
  const std::string stem = scratch_dir() + "/" + case_name(c) + suffix;
  write_safetensors(stem + "_in.safetensors", inputs);

  std::string args = "denoise --net " + quoted(golden(c.net + "_weights.safetensors")) + " --in " +
                     quoted(stem + "_in.safetensors") + " --out " + quoted(stem + "_out.safetensors");
  if (!c.precond.empty()) args += " --precond " + c.precond;
  if (f64) args += " --f64";
  if (c.raw) args += " --raw";
  const CliResult result = run_cli(args);
  ASSERT_EQ(result.code, 0) << args << "\n" << result.output;

  const TensorFile out = read_safetensors(stem + "_out.safetensors");
  const at::Tensor& got = out.get(c.raw ? "F" : "D");
  EXPECT_EQ(got.scalar_type(), f64 ? at::kDouble : at::kFloat);
  EXPECT_CLOSE(got, io.get(c.expected), f64 ? 1e-12 : 1e-5);
}

const std::vector<std::string> kD = {"x", "sigma"};
const std::vector<std::string> kDLabels = {"x", "sigma", "class_labels"};
const std::vector<std::string> kF = {"F.x_in", "F.noise_labels"};
const std::vector<std::string> kFLabels = {"F.x_in", "F.noise_labels", "class_labels"};

const std::vector<Case> kCases = {
    {"ddpmpp_uncond", "", kD, "edm.D"},
    {"ddpmpp_uncond", "vp", kD, "vp.D"},
    {"ddpmpp_uncond", "", kF, "F.out", true},
    {"ddpmpp_cond", "edm", kDLabels, "edm.D"},
    {"ddpmpp_cond", "vp", kDLabels, "vp.D"},
    {"ddpmpp_cond", "edm", kD, "edm.D_nolabel"},
    {"ddpmpp_cond", "edm", {"x", "sigma", "class_labels", "augment_labels"}, "edm.D_aug"},
    {"ddpmpp_cond", "", kFLabels, "F.out", true},
    {"ddpmpp_cond", "", {"F.x_in", "F.noise_labels", "class_labels", "augment_labels"}, "F_aug.out", true},
    {"ncsnpp_uncond", "edm", kD, "edm.D"},
    {"ncsnpp_uncond", "ve", kD, "ve.D"},
    {"ncsnpp_uncond", "", kF, "F.out", true},
    {"adm_cond", "", kDLabels, "edm.D"},
    {"adm_cond", "", kD, "edm.D_nolabel"},
    {"adm_cond", "", kFLabels, "F.out", true},
};

class DenoiseCli : public ::testing::TestWithParam<Case> {};

TEST_P(DenoiseCli, MatchesGoldenF64) { check(GetParam(), /*f64=*/true); }
TEST_P(DenoiseCli, MatchesGoldenF32) { check(GetParam(), /*f64=*/false); }

INSTANTIATE_TEST_SUITE_P(Golden, DenoiseCli, ::testing::ValuesIn(kCases),
                         [](const auto& info) { return case_name(info.param); });

}  // namespace
}  // namespace pidistill::test
