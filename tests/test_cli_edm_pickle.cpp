// `pidistill convert` and `inspect` on EDM's network pickles and training state with no architecture option:
// weights bit for bit, D against EDM's own output, hostile pickles refused in one line and never run.
#include "pidistill/edm/precond.h"
#include "pidistill/nets/net_file.h"
#include "pidistill/util/files.h"
#include "test_cli_util.h"
#include "test_common.h"

#include <nlohmann/json.hpp>

#include <cstring>
#include <filesystem>
#include <map>
#include <string>

namespace pidistill::test {
namespace {

namespace fs = std::filesystem;

std::string edm_file(const std::string& name) { return golden("edm_pickles/" + name); }

struct Case {
  std::string name;     // test name
  std::string file;     // the pickle or training state
  std::string golden;   // prefix of *_weights / *_io
  std::string precond;  // edm | vp
  bool cond;            // class labels in the io file
};
// gtest prints a parameter in the test list, and CTest copies that into every test's name: keep it short.
void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

const std::vector<Case> kCases = {
    {"vp_pkl", "edm_pkl_ddpmpp_vp.pkl", "edm_pkl_ddpmpp_vp", "vp", false},
    {"adm_pkl", "edm_pkl_adm_cond_edm.pkl", "edm_pkl_adm_cond_edm", "edm", true},
    {"vp_training_state", "edm_pkl_ddpmpp_vp_training_state.pt", "edm_pkl_ddpmpp_vp", "vp", false},
};

void expect_bit_equal(const NamedTensors& got, const TensorFile& ref) {
  ASSERT_EQ(got.size(), ref.tensors.size());
  std::map<std::string, at::Tensor> by_name(ref.tensors.begin(), ref.tensors.end());
  for (const auto& [name, a] : got) {
    ASSERT_TRUE(by_name.count(name)) << name;
    const at::Tensor b = by_name.at(name).contiguous();
    ASSERT_EQ(a.sizes(), b.sizes()) << name;
    ASSERT_EQ(a.scalar_type(), b.scalar_type()) << name;
    ASSERT_EQ(std::memcmp(a.contiguous().data_ptr(), b.data_ptr(), b.numel() * b.element_size()), 0) << name;
  }
}

class EdmPickleCli : public ::testing::TestWithParam<Case> {};

TEST_P(EdmPickleCli, ConvertWithoutArchitectureOption) {
  const Case& c = GetParam();
  const std::string out = scratch_dir() + "/" + c.name + "_teacher.safetensors";
  const CliResult r = run_cli("convert " + test::quoted(edm_file(c.file)) + " " + test::quoted(out));
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("precond " + c.precond), std::string::npos) << r.output;

  const TensorFile converted = read_safetensors(out);
  expect_bit_equal(converted.tensors, read_safetensors(edm_file(c.golden + "_weights.safetensors")));
  EXPECT_EQ(converted.meta("precond"), c.precond);
  EXPECT_EQ(converted.meta("converted_from"), c.file);
  EXPECT_EQ(converted.meta("use_fp16"), c.cond ? "true" : "false");
  const auto kwargs = nlohmann::json::parse(converted.meta("edm_init_kwargs"));
  const auto ref_kwargs = nlohmann::json::parse(
      read_safetensors(edm_file(c.golden + "_weights.safetensors")).meta("init_kwargs"));
  EXPECT_EQ(kwargs, ref_kwargs);

  // D of the converted network, the preconditioner and its constants taken from the pickle.
  const LoadedNet loaded = load_net(out);
  Precond precond(loaded.net, precond_from_string(loaded.precond));
  set_precond_constants(precond, loaded.metadata);
  const TensorFile io = read_safetensors(edm_file(c.golden + "_io.safetensors"));
  at::NoGradGuard no_grad;
  const at::Tensor labels = c.cond ? io.get("class_labels") : at::Tensor();
  EXPECT_CLOSE(precond.forward(io.get("x"), io.get("sigma"), labels).D, io.get("D"), 1e-5);
}

TEST_P(EdmPickleCli, DenoiseReadsThePickleDirectly) {
  const Case& c = GetParam();
  const TensorFile io = read_safetensors(edm_file(c.golden + "_io.safetensors"));
  NamedTensors inputs = {{"x", io.get("x")}, {"sigma", io.get("sigma")}};
  if (c.cond) inputs.emplace_back("class_labels", io.get("class_labels"));
  const std::string in = scratch_dir() + "/" + c.name + "_in.safetensors";
  const std::string out = scratch_dir() + "/" + c.name + "_D.safetensors";
  write_safetensors(in, inputs);
  const CliResult r = run_cli("denoise --net " + test::quoted(edm_file(c.file)) + " --in " +
                              test::quoted(in) + " --out " + test::quoted(out));
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_CLOSE(read_safetensors(out).get("D"), io.get("D"), 1e-5);
}

INSTANTIATE_TEST_SUITE_P(Golden, EdmPickleCli, ::testing::ValuesIn(kCases),
                         [](const auto& info) { return info.param.name; });

void expect_all_in(const std::string& output, std::initializer_list<std::string> parts) {
  for (const auto& p : parts)
    EXPECT_NE(output.find(p), std::string::npos) << "'" << p << "' not in:\n" << output;
}

TEST(EdmPickleInspect, VpPickle) {
  const CliResult r = run_cli("inspect " + test::quoted(edm_file("edm_pkl_ddpmpp_vp.pkl")));
  ASSERT_EQ(r.code, 0) << r.output;
  std::cout << r.output;
  expect_all_in(
      r.output,
      {"top-level keys:", "  ema: VPPrecond", "  loss_fn: VPLoss", "  augment_pipe: None",
       "  dataset_kwargs: dict", "network: 'ema' = VPPrecond(SongUNet)",
       "init_kwargs: {\"img_resolution\":16", "precond: vp (VPPrecond)", "beta_d=19.9", "epsilon_t=1e-05",
       "use_fp16: false (recorded; pidistill computes in float32 on CPU)", "model_type: SongUNet",
       "parameters: 189491", "loss_fn: VPLoss {", "dataset_kwargs: {", "ImageFolderDataset", "tensors: 147"});
}

TEST(EdmPickleInspect, AdmPickleAndTrainingState) {
  const CliResult adm = run_cli("inspect " + test::quoted(edm_file("edm_pkl_adm_cond_edm.pkl")));
  ASSERT_EQ(adm.code, 0) << adm.output;
  expect_all_in(adm.output, {"EDMPrecond(DhariwalUNet)", "precond: edm (EDMPrecond)", "sigma_data=0.5",
                             "use_fp16: true", "parameters: 1406787", "loss_fn: EDMLoss", "P_mean"});
  const CliResult ts = run_cli("inspect " + test::quoted(edm_file("edm_pkl_ddpmpp_vp_training_state.pt")));
  ASSERT_EQ(ts.code, 0) << ts.output;
  expect_all_in(ts.output, {"zip torch.save", "  net: VPPrecond", "  optimizer_state: dict",
                            "network: 'net' = VPPrecond(SongUNet)", "parameters: 189491"});
}

std::string unicode(const std::string& s) {
  std::string p = "X";
  for (int i = 0; i < 4; ++i) p.push_back(static_cast<char>((s.size() >> (8 * i)) & 0xff));
  return p + s;
}
std::string stack_global(const std::string& module, const std::string& name) {
  return unicode(module) + unicode(name) + "\x93";
}

TEST(EdmPickleHostile, SystemCallRefusedAndNeverRun) {
  const std::string marker = scratch_dir() + "/pwned";
  const std::string pkl =
      "\x80\x04}" + unicode("ema") + stack_global("os", "system") + unicode("touch " + marker) + "\x85Rs.";
  const std::string evil = scratch_dir() + "/evil.pkl";
  write_file_atomic(evil, pkl);
  const std::string out = scratch_dir() + "/evil.safetensors";
  for (const std::string& args :
       {"convert " + test::quoted(evil) + " " + test::quoted(out), "inspect " + test::quoted(evil),
        "denoise --net " + test::quoted(evil) + " --in x --out y"}) {
    const CliResult r = run_cli(args);
    EXPECT_ONE_LINE_ERROR(r);
    expect_all_in(r.output, {evil, "global 'os.system' is not allowed"});
  }
  EXPECT_FALSE(fs::exists(marker));
  EXPECT_FALSE(fs::exists(out));
}

TEST(EdmPickleHostile, EvalPopenAndUnknownClassRefused) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"\x80\x02"
       "c__builtin__\neval\n" +
           unicode("1") + "\x85R.",
       "'builtins.eval'"},
      {"\x80\x04" + stack_global("subprocess", "Popen") + unicode("id") + "\x85R.", "'subprocess.Popen'"},
      {"\x80\x04" + stack_global("training.networks", "SongUNet") + ")\x81.", "'training.networks.SongUNet'"},
  };
  int i = 0;
  for (const auto& [pkl, global] : cases) {
    const std::string path = scratch_dir() + "/hostile" + std::to_string(i++) + ".pkl";
    write_file_atomic(path, pkl);
    const CliResult r = run_cli("convert " + test::quoted(path) + " " + test::quoted(path + ".safetensors"));
    EXPECT_ONE_LINE_ERROR(r);
    expect_all_in(r.output, {path, "global " + global});
  }
}

TEST(EdmPickleHostile, IddpmPrecondNotSupported) {
  const std::string pkl = "\x80\x04}" + unicode("ema") +
                          stack_global("torch_utils.persistence", "_reconstruct_persistent_obj") + "}(" +
                          unicode("type") + unicode("class") + unicode("class_name") +
                          unicode("iDDPMPrecond") + unicode("state") + "}u\x85Rs.";
  const std::string path = scratch_dir() + "/iddpm.pkl";
  write_file_atomic(path, pkl);
  const CliResult r = run_cli("convert " + test::quoted(path) + " " + test::quoted(path + ".safetensors"));
  EXPECT_ONE_LINE_ERROR(r);
  expect_all_in(r.output, {path, "iDDPMPrecond is not supported"});
}

TEST(EdmPickleHostile, TruncatedPickle) {
  const std::string bytes = read_file(edm_file("edm_pkl_ddpmpp_vp.pkl"));
  const std::string path = scratch_dir() + "/truncated.pkl";
  write_file_atomic(path, bytes.substr(0, bytes.size() / 2));
  const CliResult r = run_cli("convert " + test::quoted(path) + " " + test::quoted(path + ".safetensors"));
  EXPECT_ONE_LINE_ERROR(r);
  expect_all_in(r.output, {path, "pickle byte"});
}

}  // namespace
}  // namespace pidistill::test
