// PyTorch files both ways: `convert --student` reads PID's released student checkpoints (a state dict of
// PID's SongUNet, DDP 'module.' prefixes, nested under 'state_dict'), and `export` writes torch.save state
// dicts that our reader and Python's torch.load read back bit for bit.
#include "pidistill/io/torch_pickle.h"
#include "pidistill/io/torch_save_writer.h"
#include "pidistill/nets/net_file.h"
#include "pidistill/util/files.h"
#include "test_cli_util.h"
#include "test_common.h"

#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace pidistill::test {
namespace {

const std::string kModel = "model.";

bool bit_equal(const at::Tensor& a, const at::Tensor& b) {
  if (a.sizes() != b.sizes() || a.scalar_type() != b.scalar_type()) return false;
  const at::Tensor x = a.contiguous(), y = b.contiguous();
  return std::memcmp(x.data_ptr(), y.data_ptr(), x.numel() * x.element_size()) == 0;
}

// Same names in the same order, every tensor bit-identical; `prefix` is added to got's names.
void expect_same_tensors(const NamedTensors& got, const NamedTensors& ref, const std::string& prefix = "") {
  ASSERT_EQ(got.size(), ref.size());
  for (size_t i = 0; i < ref.size(); ++i) {
    ASSERT_EQ(prefix + got[i].first, ref[i].first) << i;
    EXPECT_TRUE(bit_equal(got[i].second, ref[i].second)) << ref[i].first;
  }
}

const TensorFile& teacher() {
  static const TensorFile file = load_golden("ddpmpp_uncond_weights.safetensors");
  return file;
}
std::string teacher_path() { return golden("ddpmpp_uncond_weights.safetensors"); }
std::string config_option() { return " --config " + test::quoted(teacher().meta("config")); }

// The golden teacher as PID's students are released: keys without 'model.', each prefixed 'module.' by DDP.
NamedTensors pid_release_state() {
  NamedTensors state;
  for (const auto& [name, t] : teacher().tensors)
    state.emplace_back("module." + name.substr(kModel.size()), t);
  return state;
}

std::string pid_release_file() {
  const std::string path = scratch_dir() + "/pid_student_ddp.pt";
  write_torch_state_dict(path, pid_release_state());
  return path;
}

// {'state_dict': {...}, 'step': 7} through LibTorch's own writer (what torch.load reads, tagged containers).
std::string nested_release_file() {
  c10::Dict<std::string, at::Tensor> inner;
  for (const auto& [name, t] : pid_release_state()) inner.insert(name, t);
  c10::impl::GenericDict outer(c10::StringType::get(), c10::AnyType::get());
  outer.insert("state_dict", inner);
  outer.insert("step", int64_t(7));
  const std::vector<char> bytes = torch::pickle_save(outer);
  const std::string path = scratch_dir() + "/pid_student_nested.pt";
  write_file_atomic(path, std::string(bytes.begin(), bytes.end()));
  return path;
}

std::string convert_student(const std::string& in, const std::string& name) {
  const std::string out = scratch_dir() + "/" + name + ".safetensors";
  const CliResult r =
      run_cli("convert --student " + test::quoted(in) + " " + test::quoted(out) + config_option());
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("PID student"), std::string::npos) << r.output;
  return out;
}

at::Tensor generate(const std::string& net_and_options, const std::string& name) {
  const std::string out = scratch_dir() + "/" + name + "_x.safetensors";
  const CliResult r =
      run_cli("generate --net " + net_and_options + " --seeds 0-3 --out " + test::quoted(out));
  EXPECT_EQ(r.code, 0) << r.output;
  return read_safetensors(out).get("x_final");
}

TEST(ConvertStudentCli, PidReleaseWithDdpPrefixGivesTheStudentFile) {
  for (const auto& [in, name] : {std::pair{pid_release_file(), std::string("ddp")},
                                 std::pair{nested_release_file(), std::string("nested")}}) {
    SCOPED_TRACE(name);
    const std::string out = convert_student(in, "student_" + name);
    const TensorFile student = read_safetensors(out);
    expect_same_tensors(student.tensors, teacher().tensors);
    EXPECT_EQ(student.meta("pid_student"), "1");
    EXPECT_EQ(std::stod(student.meta("T")), 80);
    EXPECT_EQ(std::stod(student.meta("sigma_min")), 0.002);
    EXPECT_EQ(std::stod(student.meta("sigma_data")), 0.5);
    EXPECT_EQ(student.meta("precond"), "edm");
    // One call per image: the same images as the teacher's weights read as the PID student at step 0
    // (same F, same T and sigma_min).
    const at::Tensor x = generate(test::quoted(out), name);
    EXPECT_EQ(x.sizes(), (at::IntArrayRef{4, 3, 16, 16}));
    EXPECT_TRUE(x.equal(generate(test::quoted(teacher_path()) + " --as-student", name + "_teacher")));
    EXPECT_LE(x.abs().max().item<double>(), 1.0);
  }
}

TEST(ConvertStudentCli, StateDictWithoutArchitectureOrWrongKeysIsAnError) {
  const std::string in = pid_release_file();
  const CliResult none = run_cli("convert --student " + test::quoted(in) + " " +
                                 test::quoted(scratch_dir() + "/never.safetensors"));
  EXPECT_ONE_LINE_ERROR(none);
  EXPECT_NE(none.output.find("--config"), std::string::npos) << none.output;
  const CliResult wrong =
      run_cli("convert --student " + test::quoted(in) + " " +
              test::quoted(scratch_dir() + "/never.safetensors") + " --arch ddpmpp --resolution 16");
  EXPECT_ONE_LINE_ERROR(wrong);
  EXPECT_NE(wrong.output.find(in), std::string::npos) << wrong.output;
  EXPECT_FALSE(std::filesystem::exists(scratch_dir() + "/never.safetensors"));
}

struct Exported {
  std::string pt;
  nlohmann::json json;
};

Exported export_net(const std::string& net, const std::string& name, const std::string& format) {
  const std::string out = scratch_dir() + "/" + name + ".pt";
  const CliResult r =
      run_cli("export " + test::quoted(net) + " " + test::quoted(out) + " --format " + format);
  EXPECT_EQ(r.code, 0) << r.output;
  return {out, nlohmann::json::parse(read_file(scratch_dir() + "/" + name + ".json"))};
}

TEST(ExportCli, TeacherRoundTripsBitForBit) {
  const Exported edm = export_net(teacher_path(), "teacher_edm", "edm");
  expect_same_tensors(read_torch_checkpoint(edm.pt), teacher().tensors);
  EXPECT_EQ(edm.json["class"], "training.networks.EDMPrecond");
  EXPECT_EQ(edm.json["kwargs"]["img_resolution"], 16);
  EXPECT_EQ(edm.json["kwargs"]["model_type"], "SongUNet");
  EXPECT_EQ(edm.json["kwargs"]["channel_mult"], nlohmann::json::array({1, 2}));
  EXPECT_EQ(edm.json["pid_class"], "cm.network.SongUNet");
  EXPECT_FALSE(edm.json.contains("student"));
  // Our loader with the JSON's config gives the same network again.
  const LoadedNet back = load_net(edm.pt, net_config_from_json(edm.json["config"].dump()));
  expect_same_tensors(state_dict(*back.net), teacher().tensors);

  const Exported pid = export_net(teacher_path(), "teacher_pid", "pid");
  expect_same_tensors(read_torch_checkpoint(pid.pt), teacher().tensors, kModel);
  EXPECT_EQ(pid.json["class"], "training.networks.SongUNet");
  EXPECT_EQ(pid.json["kwargs"]["in_channels"], 3);
  EXPECT_FALSE(pid.json["kwargs"].contains("img_channels"));
  EXPECT_EQ(pid.json["pid_kwargs"]["num_res_blocks"], 1);
}

TEST(ExportCli, StudentRoundTripsBitForBit) {
  const std::string student = convert_student(pid_release_file(), "student_for_export");
  const Exported pid = export_net(student, "student_pid", "pid");
  expect_same_tensors(read_torch_checkpoint(pid.pt), teacher().tensors, kModel);
  ASSERT_TRUE(pid.json.contains("student")) << pid.json.dump();
  EXPECT_EQ(pid.json["student"]["T"], 80.0);
  EXPECT_EQ(pid.json["student"]["sigma_min"], 0.002);
  EXPECT_EQ(pid.json["student"]["sigma_data"], 0.5);
  EXPECT_NEAR(pid.json["student"]["c_in"].get<double>(), 1 / std::sqrt(0.25 + 6400), 1e-15);
  // Export and import are inverses: the exported student converts back to the same student file.
  const TensorFile again = read_safetensors(convert_student(pid.pt, "student_again"));
  expect_same_tensors(again.tensors, read_safetensors(student).tensors);
  EXPECT_EQ(again.meta("T"), read_safetensors(student).meta("T"));
}

TEST(ExportCli, VpPickleRecordsItsPrecondKwargs) {
  const Exported vp = export_net(golden("edm_pickles/edm_pkl_ddpmpp_vp.pkl"), "vp_edm", "edm");
  EXPECT_EQ(vp.json["class"], "training.networks.VPPrecond");
  EXPECT_EQ(vp.json["kwargs"]["beta_d"], 19.9);
  EXPECT_FALSE(vp.json["kwargs"].contains("sigma_min"));  // VPPrecond derives it; passing it is a TypeError
  expect_same_tensors(read_torch_checkpoint(vp.pt),
                      read_safetensors(golden("edm_pickles/edm_pkl_ddpmpp_vp_weights.safetensors")).tensors);
}

TEST(ExportCli, BadFormatAndJsonOverOutput) {
  EXPECT_ONE_LINE_ERROR(run_cli("export " + test::quoted(teacher_path()) + " " +
                                test::quoted(scratch_dir() + "/x.pt") + " --format onnx"));
  EXPECT_ONE_LINE_ERROR(
      run_cli("export " + test::quoted(teacher_path()) + " " + test::quoted(scratch_dir() + "/x.json")));
}

// Python's torch.load (weights_only=True too, where the installed torch has it) reads the export: a plain
// dict, the reference's keys, shapes and values. The reference is a state dict torch.save wrote in Python.
const char* const kPythonCheck = R"(
import sys, json, torch
out, ref, strip = sys.argv[1], sys.argv[2], sys.argv[3] == '1'
r = torch.load(ref, map_location='cpu')
want = {(k[len('model.'):] if strip else k): v for k, v in r.items()}
loads = 0
for kw in ({}, {'weights_only': True}):
    try:
        sd = torch.load(out, map_location='cpu', **kw)
    except TypeError as e:
        if 'weights_only' in str(e): continue
        raise
    loads += 1
    assert type(sd) is dict, type(sd)
    assert set(sd) == set(want), sorted(set(sd) ^ set(want))[:5]
    for k, v in want.items():
        assert sd[k].dtype == v.dtype and sd[k].shape == v.shape and torch.equal(sd[k], v), k
json.load(open(out[:-3] + '.json'))
print('python torch', torch.__version__, 'read', len(sd), 'tensors,', loads, 'ways')
)";

TEST(ExportCli, PythonTorchLoadReadsIt) {
  if (std::system("/usr/bin/python3 -c 'import torch' >/dev/null 2>&1") != 0)
    GTEST_SKIP() << "Python check skipped: /usr/bin/python3 cannot import torch "
                    "(apt-get install -y --no-install-recommends python3-torch)";
  const std::string script = scratch_dir() + "/check_export.py";
  write_file_atomic(script, kPythonCheck);
  const std::string ref = golden("ddpmpp_uncond_state_dict.pt");
  const std::string student = convert_student(pid_release_file(), "student_for_python");
  for (const auto& [pt, strip] : {std::pair{export_net(teacher_path(), "py_teacher_edm", "edm").pt, "0"},
                                  std::pair{export_net(teacher_path(), "py_teacher_pid", "pid").pt, "1"},
                                  std::pair{export_net(student, "py_student_pid", "pid").pt, "1"}}) {
    SCOPED_TRACE(pt);
    const CliResult r = run_command("/usr/bin/python3 " + test::quoted(script) + " " + test::quoted(pt) +
                                    " " + test::quoted(ref) + " " + strip);
    EXPECT_EQ(r.code, 0) << r.output;
    std::cout << r.output;
  }
}

}  // namespace
}  // namespace pidistill::test
