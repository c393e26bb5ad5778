// EDM network pickles and training states read as data: tensors bit for bit against the golden state dicts,
// architecture and constants from the file; legacy torch.save; hostile pickles refused in one line.
#include "pidistill/io/edm_pickle.h"
#include "pidistill/io/pickle_machine.h"
#include "pidistill/io/torch_pickle.h"
#include "pidistill/util/error.h"
#include "pidistill/util/files.h"
#include "test_common.h"

#include <unistd.h>
#include <nlohmann/json.hpp>

#include <cstring>
#include <filesystem>
#include <map>
#include <string>

namespace fs = std::filesystem;
using namespace pidistill;
using pidistill::test::expect_error;

namespace {

std::string edm_file(const std::string& name) { return test::golden("edm_pickles/" + name); }

std::string temp_path(const std::string& name) {
  fs::path dir = fs::temp_directory_path() / ("pidistill_test_edm_pickle_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  return (dir / name).string();
}
struct TempCleanup : ::testing::Environment {
  void TearDown() override { fs::remove_all(fs::path(temp_path("x")).parent_path()); }
};
const auto* const cleanup = ::testing::AddGlobalTestEnvironment(new TempCleanup);

std::string write_temp(const std::string& name, const std::string& bytes) {
  const std::string path = temp_path(name);
  write_file_atomic(path, bytes);
  return path;
}

void put_le(std::string& s, uint64_t v, int n) {
  for (int i = 0; i < n; ++i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
std::string unicode(const std::string& s) {  // BINUNICODE
  std::string p = "X";
  put_le(p, s.size(), 4);
  return p + s;
}
std::string binbytes(const std::string& s) {
  std::string p = "B";
  put_le(p, s.size(), 4);
  return p + s;
}
std::string stack_global(const std::string& module, const std::string& name) {
  return unicode(module) + unicode(name) + "\x93";
}
std::string floats(std::initializer_list<float> v) {
  std::string s(v.size() * 4, '\0');
  std::memcpy(s.data(), std::data(v), s.size());
  return s;
}

const std::string kLegacyHead = std::string(
                                    "\x80\x02\x8a\x0al\xfc\x9c"
                                    "F\xf9 j\xa8P\x19.",
                                    15) +
                                std::string("\x80\x02M\xe9\x03.", 6) + "\x80\x02}(" +
                                unicode("little_endian") + "\x88u.";

// A legacy torch.save of `object_pickle` whose storage '0' (FloatStorage) holds `count` items and `data`.
std::string legacy(const std::string& object_pickle, uint64_t count, const std::string& data) {
  std::string out = kLegacyHead + object_pickle + "\x80\x02]" + unicode("0") + "a.";
  put_le(out, count, 8);
  return out + data;
}
// The persistent id of storage '0' (protocol 2 GLOBAL), as torch.save writes it, then BINPERSID.
std::string storage_pid(int numel) {
  return "(" + unicode("storage") + "ctorch\nFloatStorage\n" + unicode("0") + unicode("cpu") + "K" +
         std::string(1, static_cast<char>(numel)) + "NtQ";
}
// _rebuild_tensor_v2(STORAGE, 0, (n,), (1,), False, OrderedDict()) where STORAGE pushes the storage.
std::string rebuild_tensor(const std::string& storage, int n) {
  return stack_global("torch._utils", "_rebuild_tensor_v2") + "(" + storage + std::string("K\0K", 3) +
         std::string(1, static_cast<char>(n)) + "\x85K\x01\x85\x89" +
         stack_global("collections", "OrderedDict") + ")RtR";
}
// A pickle of one tensor whose storage is EDM's torch.storage._load_from_bytes(legacy bytes).
std::string tensor_from_bytes(const std::string& legacy_bytes, int n) {
  const std::string storage =
      stack_global("torch.storage", "_load_from_bytes") + binbytes(legacy_bytes) + "\x85R";
  return "\x80\x04" + rebuild_tensor(storage, n) + ".";
}
std::string legacy_storage(uint64_t count, const std::string& data) {
  return legacy(storage_pid(3) + ".", count, data);
}

void expect_same_tensors(const NamedTensors& got, const TensorFile& ref) {
  ASSERT_EQ(got.size(), ref.tensors.size());
  std::map<std::string, at::Tensor> by_name(ref.tensors.begin(), ref.tensors.end());
  for (const auto& [name, a] : got) {
    ASSERT_TRUE(by_name.count(name)) << "unexpected " << name;
    const at::Tensor& b = by_name.at(name);
    ASSERT_EQ(a.scalar_type(), b.scalar_type()) << name;
    ASSERT_EQ(a.sizes(), b.sizes()) << name;
    ASSERT_EQ(std::memcmp(a.contiguous().data_ptr(), b.contiguous().data_ptr(), a.numel() * a.element_size()),
              0)
        << name;
  }
}

nlohmann::json parse(const std::string& s) { return nlohmann::json::parse(s); }

}  // namespace

TEST(EdmPickle, VpNetworkPickleEqualsGoldenStateDict) {
  const EdmPickle p = read_edm_pickle(edm_file("edm_pkl_ddpmpp_vp.pkl"));
  const TensorFile ref = read_safetensors(edm_file("edm_pkl_ddpmpp_vp_weights.safetensors"));
  expect_same_tensors(p.state, ref);
  EXPECT_EQ(p.format, "pickle");
  EXPECT_EQ(p.network_key, "ema");
  EXPECT_EQ(p.precond_class, "VPPrecond");
  EXPECT_EQ(p.precond, "vp");
  EXPECT_EQ(p.model_class, "SongUNet");
  EXPECT_FALSE(p.use_fp16);
  EXPECT_EQ(parse(p.init_kwargs), parse(ref.meta("init_kwargs")));
  EXPECT_DOUBLE_EQ(p.constants.at("beta_d"), 19.9);
  EXPECT_DOUBLE_EQ(p.constants.at("beta_min"), 0.1);
  EXPECT_DOUBLE_EQ(p.constants.at("M"), 1000);
  EXPECT_DOUBLE_EQ(p.constants.at("epsilon_t"), 1e-5);
  EXPECT_DOUBLE_EQ(p.constants.at("sigma_max"), 152.16697692871094);
  EXPECT_EQ(p.loss_class, "VPLoss");
  EXPECT_DOUBLE_EQ(parse(p.loss_kwargs).at("beta_d").get<double>(), 19.9);
  EXPECT_EQ(parse(p.dataset_kwargs).at("class_name"), "training.dataset.ImageFolderDataset");
  ASSERT_EQ(p.top_level.size(), 4u);
  EXPECT_EQ(p.top_level[0].first, "ema");
  EXPECT_EQ(p.top_level[2].second, "None");
}

TEST(EdmPickle, AdmNetworkPickleEqualsGoldenStateDict) {
  const EdmPickle p = read_edm_pickle(edm_file("edm_pkl_adm_cond_edm.pkl"));
  const TensorFile ref = read_safetensors(edm_file("edm_pkl_adm_cond_edm_weights.safetensors"));
  expect_same_tensors(p.state, ref);
  EXPECT_EQ(p.precond_class, "EDMPrecond");
  EXPECT_EQ(p.precond, "edm");
  EXPECT_EQ(p.model_class, "DhariwalUNet");
  EXPECT_TRUE(p.use_fp16);
  EXPECT_DOUBLE_EQ(p.constants.at("sigma_data"), 0.5);
  EXPECT_EQ(parse(p.init_kwargs), parse(ref.meta("init_kwargs")));
  EXPECT_EQ(p.loss_class, "EDMLoss");
  EXPECT_DOUBLE_EQ(parse(p.loss_kwargs).at("P_mean").get<double>(), -1.2);
}

TEST(EdmPickle, TrainingStateEqualsGoldenStateDict) {
  const EdmPickle p = read_edm_pickle(edm_file("edm_pkl_ddpmpp_vp_training_state.pt"));
  expect_same_tensors(p.state, read_safetensors(edm_file("edm_pkl_ddpmpp_vp_weights.safetensors")));
  EXPECT_EQ(p.format, "zip torch.save");
  EXPECT_EQ(p.network_key, "net");
  EXPECT_EQ(p.precond, "vp");
  ASSERT_EQ(p.top_level.size(), 2u);
  EXPECT_EQ(p.top_level[1].first, "optimizer_state");
}

TEST(EdmPickle, StateDictOrderIsPyTorchs) {
  const EdmPickle p = read_edm_pickle(edm_file("edm_pkl_ddpmpp_vp.pkl"));
  ASSERT_FALSE(p.state.empty());
  EXPECT_EQ(p.state.front().first, "model.map_augment.weight");
  EXPECT_EQ(p.state.back().first, "model.dec.16x16_aux_conv.bias");
}

TEST(EdmPickle, PlainStateDictIsNoEdmNetwork) {
  const TorchPickle p = read_torch_pickle(test::golden("ddpmpp_uncond_state_dict.pt"));
  EXPECT_FALSE(edm_pickle_from(p).has_value());
  expect_error([] { read_edm_pickle(test::golden("ddpmpp_uncond_state_dict.pt")); },
               {"holds no EDM network"});
}

TEST(LegacyTorchSave, StorageInsidePickle) {
  const std::string path =
      write_temp("t.pkl", tensor_from_bytes(legacy_storage(3, floats({1.5f, -2.f, 3.f})), 3));
  const TorchPickle p = read_torch_pickle(path);
  ASSERT_TRUE(p.root->is(PyValue::Kind::Tensor));
  EXPECT_TRUE(at::equal(p.root->tensor, at::tensor({1.5f, -2.f, 3.f})));
}

TEST(LegacyTorchSave, WholeFileStateDict) {
  // torch.save({'w': tensor}, f, _use_new_zipfile_serialization=False)
  const std::string object = "\x80\x02}" + unicode("w") + rebuild_tensor(storage_pid(3), 3) + "s.";
  const std::string path = write_temp("legacy.pt", legacy(object, 3, floats({4, 5, 6})));
  EXPECT_TRUE(is_torch_file(path));
  const NamedTensors t = read_torch_checkpoint(path);
  ASSERT_EQ(t.size(), 1u);
  EXPECT_EQ(t[0].first, "w");
  EXPECT_TRUE(at::equal(t[0].second, at::tensor({4.f, 5.f, 6.f})));
  EXPECT_EQ(read_torch_pickle(path).format, "legacy torch.save");
}

TEST(LegacyTorchSave, TruncatedStorageRefused) {
  const std::string whole = legacy_storage(3, floats({1, 2, 3}));
  const std::string path = write_temp("trunc.pkl", tensor_from_bytes(whole.substr(0, whole.size() - 4), 3));
  expect_error([&] { read_torch_pickle(path); }, {path, "truncated storage '0'", "claims 3 items"});
  // A claimed count far beyond the data: refused before any allocation.
  const std::string huge =
      write_temp("huge.pkl", tensor_from_bytes(legacy_storage(uint64_t{1} << 60, ""), 3));
  expect_error([&] { read_torch_pickle(huge); }, {huge, "truncated storage '0'"});
  // Cut inside the pickles that precede the data.
  const std::string cut = write_temp("cut.pkl", tensor_from_bytes(whole.substr(0, 40), 3));
  expect_error([&] { read_torch_pickle(cut); }, {cut, "storage at pickle byte"});
}

TEST(LegacyTorchSave, StorageShorterThanTensorRefused) {
  const std::string path = write_temp("short.pkl", tensor_from_bytes(legacy_storage(2, floats({1, 2})), 3));
  expect_error([&] { read_torch_pickle(path); }, {path, "beyond storage '0' of 2 items"});
}

TEST(LegacyTorchSave, WholeFileDamaged) {
  const std::string object = "\x80\x02}" + unicode("w") + rebuild_tensor(storage_pid(3), 3) + "s.";
  const std::string good = legacy(object, 3, floats({4, 5, 6}));
  const std::string path = write_temp("legacy_trunc.pt", good.substr(0, good.size() - 1));
  expect_error([&] { read_torch_checkpoint(path); },
               {path, "truncated storage '0'", "not a zip torch.save file"});
}

TEST(HostilePickle, GlobalsOutsideTheAllowListRefused) {
  struct Case {
    std::string name, pickle, global;
  };
  const std::vector<Case> cases = {
      {"os_system.pkl", "\x80\x04" + stack_global("os", "system") + unicode("touch /tmp/pwned") + "\x85R.",
       "'os.system'"},
      {"posix_system.pkl",
       "\x80\x02"
       "cposix\nsystem\n" +
           unicode("id") + "\x85R.",
       "'posix.system'"},
      {"eval.pkl",
       "\x80\x02"
       "c__builtin__\neval\n" +
           unicode("1+1") + "\x85R.",
       "'builtins.eval'"},
      {"popen.pkl", "\x80\x04" + stack_global("subprocess", "Popen") + unicode("id") + "\x85R.",
       "'subprocess.Popen'"},
      {"unknown_class.pkl", "\x80\x04" + stack_global("mymodule", "MyNet") + ")\x81.", "'mymodule.MyNet'"},
      {"getattr.pkl", "\x80\x04" + stack_global("builtins", "getattr") + ".", "'builtins.getattr'"},
  };
  for (const Case& c : cases) {
    const std::string path = write_temp(c.name, c.pickle);
    expect_error([&] { read_torch_pickle(path); }, {path, "global " + c.global, "is not allowed"});
  }
  // Hidden inside a storage's legacy bytes, and inside a zip training state's dict: refused the same way.
  const std::string inner = kLegacyHead +
                            "\x80\x02"
                            "cos\nsystem\n" +
                            unicode("id") + "\x85R.";
  const std::string nested = write_temp("nested.pkl", tensor_from_bytes(inner, 3));
  expect_error([&] { read_torch_pickle(nested); }, {nested, "global 'os.system'", "storage at pickle byte"});
}

TEST(HostilePickle, StoragesCannotNest) {
  const std::string inner =
      kLegacyHead + "\x80\x04" + stack_global("torch.storage", "_load_from_bytes") + binbytes("x") + "\x85R.";
  const std::string path = write_temp("nest_storage.pkl", tensor_from_bytes(inner, 3));
  expect_error([&] { read_torch_pickle(path); },
               {path, "'torch.storage._load_from_bytes' is not allowed here"});
}

TEST(HostilePickle, ClaimedLengthsBeyondTheDataRefused) {
  const std::string path =
      write_temp("long.pkl", std::string("\x80\x04\x8d\xff\xff\xff\xff\xff\xff\xff\x7f", 11));
  expect_error([&] { read_torch_pickle(path); }, {path, "pickle byte 2", "truncated pickle"});
  const std::string path2 = write_temp("binbytes.pkl", std::string("\x80\x04"
                                                                   "B\xff\xff\xff\x7f"
                                                                   "abc",
                                                                   9));
  expect_error([&] { read_torch_pickle(path2); }, {path2, "truncated pickle"});
}

TEST(HostilePickle, DeepNestingIsAnErrorNotAStackOverflow) {
  const int depth = 200000;
  // {'a': {'a': {...}}}: SETITEM from the innermost out.
  std::string dicts = "\x80\x04}";
  for (int i = 0; i < depth; ++i)
    dicts +=
        "\x8c\x01"
        "a}";
  dicts += std::string(depth, 's') + ".";
  const std::string path = write_temp("deep_dict.pt", dicts);
  expect_error([&] { read_torch_checkpoint(path); }, {path, "nested deeper than 100 levels"});
  // [[[...]]] a million deep: parsing and freeing need no recursion; any walk over it stops at the limit.
  std::string lists = "\x80\x04" + std::string(1000000, ']') + std::string(999999, 'a') + ".";
  const std::string path2 = write_temp("deep_list.pkl", lists);
  const TorchPickle p = read_torch_pickle(path2);
  expect_error([&] { pickle_to_json(p.root, path2); }, {path2, "nested deeper than 100 levels"});
  // A list that contains itself.
  const std::string path3 = write_temp("cycle.pkl", std::string("\x80\x04]\x94h\x00"
                                                                "a.",
                                                                8));
  const TorchPickle c = read_torch_pickle(path3);
  expect_error([&] { pickle_to_json(c.root, path3); }, {path3, "nested deeper than 100 levels"});
}

TEST(HostilePickle, PersistentObjectNeedsAClassMeta) {
  // _reconstruct_persistent_obj({'type': 'module', ...}): EDM's persistence for whole modules is not read.
  const std::string pkl =
      "\x80\x04" + stack_global("torch_utils.persistence", "_reconstruct_persistent_obj") + "}(" +
      unicode("type") + unicode("module") + unicode("module_src") + unicode("import os") + "u\x85R.";
  const std::string path = write_temp("meta.pkl", pkl);
  expect_error([&] { read_torch_pickle(path); }, {path, "meta['type'] is not 'class'"});
}

TEST(HostilePickle, AllowListIsExplicit) {
  const auto& g = allowed_pickle_globals();
  EXPECT_NE(std::find(g.begin(), g.end(), "torch_utils.persistence._reconstruct_persistent_obj"), g.end());
  for (const char* refused : {"os.system", "builtins.eval", "builtins.exec", "subprocess.Popen",
                              "builtins.getattr", "builtins.__import__"})
    EXPECT_EQ(std::find(g.begin(), g.end(), refused), g.end()) << refused;
}
