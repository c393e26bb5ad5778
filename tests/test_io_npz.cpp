// npz/npy: round trips, hand-built npy bytes (Fortran order too), one test per kind of bad file, the golden
// reference statistics, and numpy interop both ways (np.load of our files, our reads of
// np.savez/_compressed).
#include "pidistill/io/npz.h"
#include "pidistill/io/zip_writer.h"
#include "pidistill/util/error.h"
#include "pidistill/util/files.h"
#include "test_common.h"

#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>

namespace fs = std::filesystem;
using namespace pidistill;
using pidistill::test::expect_error;
using pidistill::test::golden;

namespace {

const char* kPython = "/usr/bin/python3";

std::string temp_dir(const std::string& name) {
  fs::path dir =
      fs::temp_directory_path() / ("pidistill_test_npz_" + std::to_string(::getpid()) + "_" + name);
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir.string();
}

struct TempCleanup : ::testing::Environment {
  void TearDown() override {
    const std::string prefix = "pidistill_test_npz_" + std::to_string(::getpid()) + "_";
    for (const auto& e : fs::directory_iterator(fs::temp_directory_path()))
      if (e.path().filename().string().rfind(prefix, 0) == 0) fs::remove_all(e.path());
  }
};
const auto* const cleanup = ::testing::AddGlobalTestEnvironment(new TempCleanup);

// An npy entry from a header dict and raw data, version 1.0, padded as numpy pads.
std::string npy(const std::string& dict, const std::string& data) {
  std::string header = dict;
  while ((10 + header.size() + 1) % 64 != 0) header += ' ';
  header += '\n';
  std::string out = std::string("\x93NUMPY", 6) + '\x01' + '\x00';
  out += static_cast<char>(header.size() & 0xff);
  out += static_cast<char>(header.size() >> 8);
  return out + header + data;
}

std::string f8_bytes(std::initializer_list<double> values) {
  std::string out;
  for (double v : values) out.append(reinterpret_cast<const char*>(&v), sizeof v);  // little-endian host
  return out;
}

// An npz holding one entry NAME.npy with `bytes`.
std::string npz_with(const std::string& path, const std::string& name, const std::string& bytes) {
  ZipWriter zip(path);
  zip.add(name + ".npy", bytes);
  write_file_atomic(path, zip.finish());
  return path;
}

const at::Tensor& get(const NamedTensors& arrays, const std::string& name) {
  for (const auto& [n, t] : arrays)
    if (n == name) return t;
  throw std::runtime_error("no array " + name);
}

bool have_numpy() {
  return std::system((std::string(kPython) + " -c 'import numpy' 2>/dev/null").c_str()) == 0;
}

int run_python(const std::string& dir, const std::string& script) {
  const std::string file = dir + "/check.py";
  write_file_atomic(file, script);
  const std::string cmd = std::string(kPython) + " " + file + " " + dir;
  std::cout << "[ run ] " << cmd << std::endl;  // flushed: python's output follows
  return std::system(cmd.c_str());
}

}  // namespace

TEST(Npz, RoundTripDtypesAndShapes) {
  const std::string path = temp_dir("roundtrip") + "/a.npz";
  NamedTensors in = {
      {"f64", at::arange(12, at::kDouble).reshape({3, 4}) / 7.0},
      {"f32", at::linspace(-1, 3, 5, at::kFloat)},
      {"i64", at::scalar_tensor(int64_t{1} << 40, at::kLong)},  // 0-d
      {"f16", at::linspace(-2, 2, 6).to(at::kHalf)},
      {"i32", at::tensor({-3, 7}, at::kInt)},
      {"u8", at::tensor({0, 255}, at::kByte)},
      {"b", at::tensor({1, 0, 1}, at::kByte).to(at::kBool)},
      {"empty", at::zeros({0, 3}, at::kDouble)},
      {"strided", at::arange(6, at::kDouble).reshape({2, 3}).t()},  // non-contiguous source
  };
  write_npz(path, in);
  const NamedTensors out = read_npz(path);
  ASSERT_EQ(out.size(), in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    EXPECT_EQ(out[i].first, in[i].first);
    EXPECT_EQ(out[i].second.scalar_type(), in[i].second.scalar_type()) << in[i].first;
    EXPECT_EQ(out[i].second.sizes(), in[i].second.sizes()) << in[i].first;
    EXPECT_TRUE(at::equal(out[i].second, in[i].second)) << in[i].first;
  }
  EXPECT_EQ(test::count_temporaries(fs::path(path).parent_path().string()), 0);
}

TEST(Npz, HandBuiltNpyCAndFortranOrder) {
  const std::string dir = temp_dir("hand");
  ZipWriter zip(dir + "/h.npz");
  zip.add("c.npy",
          npy("{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }", f8_bytes({1, 2, 3, 4, 5, 6})));
  // Column-major bytes of [[1, 2, 3], [4, 5, 6]].
  zip.add("f.npy",
          npy("{'descr': '<f8', 'fortran_order': True, 'shape': (2, 3), }", f8_bytes({1, 4, 2, 5, 3, 6})));
  zip.add("s.npy", npy("{'descr': '<f8', 'fortran_order': False, 'shape': (), }", f8_bytes({2.5})));
  zip.add("u.npy", npy("{\"shape\": (3,), \"fortran_order\": False, \"descr\": \"|u1\"}", "\x01\x02\xff"));
  write_file_atomic(dir + "/h.npz", zip.finish());
  const NamedTensors t = read_npz(dir + "/h.npz");
  const at::Tensor want = at::arange(1, 7, at::kDouble).reshape({2, 3});
  EXPECT_TRUE(at::equal(get(t, "c"), want));
  EXPECT_TRUE(at::equal(get(t, "f"), want));
  EXPECT_TRUE(get(t, "f").is_contiguous());
  EXPECT_EQ(get(t, "s").dim(), 0);
  EXPECT_EQ(get(t, "s").item<double>(), 2.5);
  EXPECT_TRUE(at::equal(get(t, "u"), at::tensor({1, 2, 255}, at::kByte)));
}

TEST(Npz, BadFilesNameTheFileAndArray) {
  const std::string dir = temp_dir("bad");
  const std::string ok_header = "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }";
  struct Case {
    const char* file;
    std::string entry;
    const char* problem;
  };
  const Case cases[] = {
      {"magic.npz", "\x93NUMPX" + npy(ok_header, f8_bytes({1, 2})).substr(6), "bad magic"},
      {"object.npz", npy("{'descr': '|O', 'fortran_order': False, 'shape': (2,), }", f8_bytes({1, 2})),
       "object dtype"},
      {"bigendian.npz", npy("{'descr': '>f8', 'fortran_order': False, 'shape': (2,), }", f8_bytes({1, 2})),
       "big-endian"},
      {"complex.npz", npy("{'descr': '<c16', 'fortran_order': False, 'shape': (1,), }", f8_bytes({1, 2})),
       "unsupported dtype"},
      {"short.npz", npy(ok_header, f8_bytes({1})), "truncated"},
      {"long.npz", npy(ok_header, f8_bytes({1, 2, 3})), "size mismatch"},
      {"overflow.npz",
       npy("{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296, 4294967296), }", f8_bytes({1})),
       "overflows"},
      // Found by fuzz_npz: with a 0 among them the size is 0, but the other dimensions' strides overflow int64
      // (LibTorch threw an anonymous error from permute).
      {"zero_overflow.npz",
       npy("{'descr': '<f8', 'fortran_order': True, 'shape': (0, 8888888888, 8888888888), }", ""), "overflows"},
      {"header.npz", npy("{'descr': '<f8', 'fortran_order': Maybe, 'shape': (2,), }", f8_bytes({1, 2})),
       "fortran_order"},
      {"cut_header.npz", npy(ok_header, "").substr(0, 30), "truncated"},
  };
  for (const auto& c : cases) {
    const std::string path = npz_with(dir + "/" + c.file, "x", c.entry);
    expect_error([&] { read_npz(path); }, {path, "array 'x'", c.problem});
  }
  // Whole-file faults: not a zip, and a good npz cut short (its zip directory is gone).
  write_file_atomic(dir + "/text.npz", "mu,sigma\n1,2\n");
  expect_error([&] { read_npz(dir + "/text.npz"); }, {dir + "/text.npz", "not an npz"});
  write_npz(dir + "/full.npz", {{"mu", at::arange(100, at::kDouble)}});
  const std::string full = read_file(dir + "/full.npz");
  write_file_atomic(dir + "/cut.npz", full.substr(0, full.size() / 2));
  expect_error([&] { read_npz(dir + "/cut.npz"); }, {dir + "/cut.npz", "truncated"});
  expect_error([&] { read_npz(dir + "/missing.npz"); }, {dir + "/missing.npz"});
  expect_error(
      [&] {
        write_npz(dir + "/bf16.npz", {{"w", at::zeros({2}, at::kBFloat16)}});
      },
      {dir + "/bf16.npz", "array 'w'", "BFloat16"});
  expect_error(
      [&] {
        write_npz(dir + "/dup.npz", {{"a", at::zeros({1})}, {"a", at::zeros({1})}});
      },
      {dir + "/dup.npz", "'a.npy'", "twice"});
}

TEST(Npz, ReadsGoldenReferenceStats) {
  const NamedTensors t = read_npz(golden("fid/ref_stats_2048.npz"));
  ASSERT_EQ(t.size(), 2u);
  EXPECT_EQ(get(t, "mu").sizes(), at::IntArrayRef({2048}));
  EXPECT_EQ(get(t, "sigma").sizes(), at::IntArrayRef({2048, 2048}));
  EXPECT_EQ(get(t, "mu").scalar_type(), at::kDouble);
  EXPECT_EQ(get(t, "sigma").scalar_type(), at::kDouble);
  // A covariance: symmetric (np.cov makes it exactly so) with a non-negative diagonal.
  EXPECT_TRUE(at::equal(get(t, "sigma"), get(t, "sigma").t()));
  EXPECT_GE(get(t, "sigma").diagonal().min().item<double>(), 0.0);
}

TEST(Npz, NumpyLoadsOursAndWeLoadNumpys) {
  if (!have_numpy()) {
    std::cout << "[ skip ] " << kPython << " has no numpy (scripts/install_deps.sh installs python3-numpy)\n";
    GTEST_SKIP();
  }
  const std::string dir = temp_dir("numpy");
  write_npz(dir + "/ours.npz", {{"f64", at::arange(12, at::kDouble).reshape({3, 4}) / 7.0},
                                {"f32", at::arange(5, at::kFloat) - 2.5f},
                                {"i64", at::scalar_tensor(int64_t{-42}, at::kLong)},
                                {"b", at::tensor({1, 0}, at::kByte).to(at::kBool)},
                                {"u8", at::tensor({7, 200}, at::kByte)}});
  // The folder comes in as argv[1], so the script is one plain literal.
  const std::string check = R"(import io, sys, zipfile
import numpy as np
path = sys.argv[1] + '/ours.npz'
d = np.load(path)
ok = (d['f64'].dtype == np.float64 and d['f64'].shape == (3, 4)
      and np.array_equal(d['f64'], np.arange(12.).reshape(3, 4) / 7)
      and d['f32'].dtype == np.float32 and np.array_equal(d['f32'], np.arange(5, dtype=np.float32) - 2.5)
      and d['i64'].dtype == np.int64 and d['i64'].shape == () and d['i64'] == -42
      and d['b'].dtype == np.bool_ and list(d['b']) == [True, False]
      and d['u8'].dtype == np.uint8 and list(d['u8']) == [7, 200])
z = zipfile.ZipFile(path)
for name in d.files:  # byte for byte what np.save writes, header padding included
    buf = io.BytesIO()
    np.save(buf, d[name])
    ok = ok and z.read(name + '.npy') == buf.getvalue()
print('[ numpy ] np.load of our npz:', 'ok' if ok else 'MISMATCH', sorted(d.files), flush=True)
a = np.arange(24, dtype=np.float64).reshape(4, 6) / 3
kw = dict(mu=a[0], sigma=a, fort=np.asfortranarray(a), f32=a.astype(np.float32),
          i32=np.arange(-3, 3, dtype=np.int32), s=np.float64(3.25))
np.savez(sys.argv[1] + '/plain.npz', **kw)
np.savez_compressed(sys.argv[1] + '/zipped.npz', **kw)
sys.exit(0 if ok else 1)
)";
  ASSERT_EQ(run_python(dir, check), 0);
  const at::Tensor a = at::arange(24, at::kDouble).reshape({4, 6}) / 3;
  for (const char* file : {"plain.npz", "zipped.npz"}) {
    const NamedTensors t = read_npz(dir + "/" + file);
    EXPECT_EQ(t.size(), 6u) << file;
    EXPECT_TRUE(at::equal(get(t, "mu"), a[0])) << file;
    EXPECT_TRUE(at::equal(get(t, "sigma"), a)) << file;
    EXPECT_TRUE(at::equal(get(t, "fort"), a)) << file;
    EXPECT_TRUE(at::equal(get(t, "f32"), a.to(at::kFloat))) << file;
    EXPECT_TRUE(at::equal(get(t, "i32"), at::arange(-3, 3, at::kInt))) << file;
    EXPECT_EQ(get(t, "s").dim(), 0) << file;
    EXPECT_EQ(get(t, "s").item<double>(), 3.25) << file;
  }
}
