// safetensors: round trips of every dtype and of metadata, golden files, and one test per kind of bad file.
#include "pidistill/io/safetensors.h"
#include "pidistill/io/torch_pickle.h"
#include "pidistill/util/error.h"
#include "pidistill/util/files.h"
#include "test_common.h"

#include <sys/stat.h>

#include <unistd.h>
#include <fstream>

#include <cstdint>
#include <filesystem>
#include <stdexcept>
#include <string>

namespace fs = std::filesystem;
using namespace pidistill;
using pidistill::test::count_temporaries;
using pidistill::test::expect_error;
using pidistill::test::with_file_size_limit;

namespace {

// A fresh folder per test under the system temp dir.
std::string temp_dir(const std::string& name) {
  fs::path dir = fs::temp_directory_path() / ("pidistill_test_io_" + std::to_string(::getpid()) + "_" + name);
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir.string();
}

// Builds a safetensors file from a raw header string and data bytes.
std::string raw_safetensors(const std::string& header, const std::string& data) {
  std::string out(8, '\0');
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return out + header + data;
}

void expect_bad_file(const std::string& name, const std::string& bytes, const std::string& problem) {
  std::string path = temp_dir("bad") + "/" + name;
  write_file_atomic(path, bytes);
  expect_error([&] { read_safetensors(path); }, {path, problem});
}

// Removes this run's temporary folders once all tests are done.
struct TempCleanup : ::testing::Environment {
  void TearDown() override {
    const std::string prefix = "pidistill_test_io_" + std::to_string(::getpid()) + "_";
    for (const auto& e : fs::directory_iterator(fs::temp_directory_path()))
      if (e.path().filename().string().rfind(prefix, 0) == 0) fs::remove_all(e.path());
  }
};
const auto* const cleanup = ::testing::AddGlobalTestEnvironment(new TempCleanup);

}  // namespace

TEST(Safetensors, RoundTripEveryDtypeAndMetadata) {
  std::string path = temp_dir("roundtrip") + "/all.safetensors";
  auto g = at::detail::createCPUGenerator(7);
  at::Tensor base = at::randn({3, 5}, g, at::kDouble) * 100;  // base: [3, 5]
  NamedTensors in = {
      {"f64", base},
      {"f32", base.to(at::kFloat)},
      {"f16", base.to(at::kHalf)},
      {"bf16", base.to(at::kBFloat16)},
      {"i64", base.to(at::kLong) * static_cast<int64_t>(1000000007)},
      {"i32", base.to(at::kInt)},
      {"i16", base.to(at::kShort)},
      {"i8", base.clamp(-128, 127).to(at::kChar)},
      {"u8", base.abs().clamp(0, 255).to(at::kByte)},
      {"bool", base > 0},
      {"scalar", at::tensor(3.5)},               // 0-d
      {"empty", at::empty({0, 4}, at::kFloat)},  // zero elements
      {"strided", base.t()},                     // non-contiguous: written contiguous
  };
  std::map<std::string, std::string> meta = {{"config", "{\"a\": [1, 2]}"}, {"seed", "42"}, {"empty", ""}};
  write_safetensors(path, in, meta);

  // Header length is a multiple of 8 (padded with spaces).
  std::string bytes = read_file(path);
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(bytes[i]);
  EXPECT_EQ(n % 8, 0u);

  TensorFile out = read_safetensors(path);
  ASSERT_EQ(out.tensors.size(), in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    EXPECT_EQ(out.tensors[i].first, in[i].first);  // order kept
    const at::Tensor& t = out.tensors[i].second;
    EXPECT_EQ(t.scalar_type(), in[i].second.scalar_type()) << in[i].first;
    EXPECT_EQ(t.sizes(), in[i].second.sizes()) << in[i].first;
    EXPECT_TRUE(at::equal(t, in[i].second)) << in[i].first;
  }
  EXPECT_EQ(out.metadata, meta);
  EXPECT_EQ(out.meta("seed"), "42");
  EXPECT_EQ(out.meta("absent", "dflt"), "dflt");
  EXPECT_TRUE(out.has("bf16"));
  EXPECT_FALSE(out.has("nope"));
  expect_error([&] { out.get("nope"); }, {path, "no tensor 'nope'"});
}

// The streamed writer (header, then each tensor straight from its memory) gives the format's bytes exactly: a
// hand-written fixture with a non-contiguous view, a tensor of no elements and metadata.
TEST(Safetensors, StreamedWriteIsTheFormatByteForByte) {
  std::string path = temp_dir("bytes") + "/f.safetensors";
  at::Tensor b = at::arange(6, at::kFloat).reshape({2, 3}).t();  // [3, 2], not contiguous
  at::Tensor a = at::tensor({int64_t{7}, int64_t{-1}}, at::kLong);
  at::Tensor e = at::zeros({0, 4}, at::kDouble);
  write_safetensors(path, {{"b", b}, {"a", a}, {"e", e}}, {{"k", "v"}});
  std::string header = R"({"__metadata__":{"k":"v"},"b":{"dtype":"F32","shape":[3,2],"data_offsets":[0,24]},)"
                       R"("a":{"dtype":"I64","shape":[2],"data_offsets":[24,40]},)"
                       R"("e":{"dtype":"F64","shape":[0,4],"data_offsets":[40,40]}})";
  header.append((8 - header.size() % 8) % 8, ' ');
  const float b_values[] = {0, 3, 1, 4, 2, 5};  // b row by row
  const int64_t a_values[] = {7, -1};
  std::string data(reinterpret_cast<const char*>(b_values), sizeof b_values);
  data.append(reinterpret_cast<const char*>(a_values), sizeof a_values);
  EXPECT_EQ(read_file(path), raw_safetensors(header, data));
}

TEST(Safetensors, GoldenFilesReadable) {
  TensorFile s = test::load_golden("schedules_f64.safetensors");
  const at::Tensor& t = s.get("edm_t_steps_18");
  ASSERT_EQ(t.scalar_type(), at::kDouble);
  ASSERT_EQ(t.numel(), 19);
  EXPECT_DOUBLE_EQ(t[0].item<double>(), 80.0);  // sigma_max first
  EXPECT_DOUBLE_EQ(t[18].item<double>(), 0.0);  // t_N = 0 appended
  EXPECT_NEAR(t[17].item<double>(), 0.002, 1e-15);
  EXPECT_FALSE(s.meta("edm").empty());

  TensorFile w = test::load_golden("ddpmpp_uncond_weights.safetensors");
  EXPECT_EQ(w.tensors.size(), 146u);
  EXPECT_EQ(w.tensors.front().first, "model.map_layer0.weight");
  EXPECT_NE(w.meta("config").find("SongUNet"), std::string::npos);

  // Re-writing a golden file and reading it back keeps every tensor bit for bit.
  std::string path = temp_dir("golden") + "/schedules.safetensors";
  write_safetensors(path, s.tensors, s.metadata);
  TensorFile again = read_safetensors(path);
  for (size_t i = 0; i < s.tensors.size(); ++i)
    EXPECT_TRUE(at::equal(again.tensors[i].second, s.tensors[i].second));
}

TEST(Safetensors, TruncatedFile) {
  expect_bad_file("short.safetensors", "abc", "truncated");
  // A valid file cut in the data section.
  std::string dir = temp_dir("trunc");
  write_safetensors(dir + "/ok.safetensors", {{"x", at::ones({16}, at::kFloat)}});
  std::string bytes = read_file(dir + "/ok.safetensors");
  expect_bad_file("cut.safetensors", bytes.substr(0, bytes.size() - 4), "beyond the data section");
}

TEST(Safetensors, HeaderLengthBeyondFile) {
  std::string f = raw_safetensors("{}      ", "");
  f[0] = static_cast<char>(0x00);
  f[1] = static_cast<char>(0x10);  // 4096 > file size
  expect_bad_file("hdr.safetensors", f, "header length 4096");
}

TEST(Safetensors, OffsetsOutOfRange) {
  expect_bad_file(
      "range.safetensors",
      raw_safetensors(R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})", std::string(8, '\0')),
      "tensor 'x': data_offsets [8, 16] go beyond");
}

TEST(Safetensors, OffsetsOverlap) {
  expect_bad_file("overlap.safetensors",
                  raw_safetensors(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                                  R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                                  std::string(12, '\0')),
                  "overlap tensor 'a'");
}

TEST(Safetensors, ShapeOffsetMismatch) {
  expect_bad_file(
      "shape.safetensors",
      raw_safetensors(R"({"x":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", std::string(8, '\0')),
      "tensor 'x': shape [3] x 4 bytes does not match data_offsets span of 8 bytes");
}

TEST(Safetensors, UnknownDtype) {
  expect_bad_file(
      "dtype.safetensors",
      raw_safetensors(R"({"x":{"dtype":"F8_E4M3","shape":[2],"data_offsets":[0,2]}})", std::string(2, '\0')),
      "tensor 'x': unknown dtype 'F8_E4M3'");
}

TEST(Safetensors, InvalidJson) {
  expect_bad_file("json.safetensors", raw_safetensors(R"({"x": {"dtype": )", ""), "invalid JSON header");
  expect_bad_file("notobj.safetensors", raw_safetensors("[1, 2]", ""), "must be an object");
  expect_bad_file("meta.safetensors", raw_safetensors(R"({"__metadata__":{"a":1}})", ""),
                  "__metadata__ value of 'a'");
}

TEST(Safetensors, UnwritableLocationThrowsAndKeepsExistingFile) {
  expect_error(
      [] {
        write_safetensors("/nonexistent_dir_pidistill/x.safetensors", {{"x", at::ones({2})}});
      },
      {"/nonexistent_dir_pidistill/x.safetensors", "cannot create a temporary file"});

  // A write that fails half-way (the disk is full) leaves the existing file intact and no temporary behind.
  std::string dir = temp_dir("keep");
  std::string path = dir + "/w.safetensors";
  write_safetensors(path, {{"x", at::arange(4, at::kFloat)}});
  std::string before = read_file(path);
  EXPECT_EXIT(with_file_size_limit(before.size() + 64,
                                   [&] {
                                     expect_error(
                                         [&] {
                                           write_safetensors(path, {{"y", at::zeros({100000})}});
                                         },
                                         {path, "write failed"});
                                   }),
              testing::ExitedWithCode(0), "");
  EXPECT_EQ(read_file(path), before);
  EXPECT_TRUE(at::equal(read_safetensors(path).get("x"), at::arange(4, at::kFloat)));
  EXPECT_EQ(count_temporaries(dir), 0);
}

TEST(Safetensors, AtomicWriteIgnoresASymlinkPlantedAtTheOldTemporaryName) {
  // Anyone who can write to the output folder could once plant OUT.tmp -> a file of the user's and have the
  // next checkpoint overwrite it. The temporary now gets a fresh name created exclusively.
  std::string dir = temp_dir("symlink");
  std::string victim = dir + "/victim.txt", path = dir + "/out.safetensors";
  { std::ofstream(victim) << "precious"; }
  fs::create_symlink(victim, path + ".tmp");
  write_safetensors(path, {{"x", at::ones({2})}});
  EXPECT_EQ(read_file(victim), "precious");
  EXPECT_TRUE(at::equal(read_safetensors(path).get("x"), at::ones({2})));
}

TEST(Files, StreamedAtomicWriteThatThrowsKeepsTheOldFile) {
  std::string dir = temp_dir("stream");
  std::string path = dir + "/f.bin";
  write_file_atomic(path, [](const WriteBytes& write) {
    write("ab", 2);
    write("cd", 2);
  });
  EXPECT_EQ(read_file(path), "abcd");
  EXPECT_THROW(write_file_atomic(path,
                                 [](const WriteBytes& write) {
                                   write("xy", 2);
                                   throw std::runtime_error("the producer failed half-way");
                                 }),
               std::runtime_error);
  EXPECT_EQ(read_file(path), "abcd");
  EXPECT_EQ(count_temporaries(dir), 0);
}

TEST(Files, StaleTemporariesOfAKilledWriteAreRemovedAndNothingElse) {
  std::string dir = temp_dir("stale");
  { std::ofstream(dir + "/.training-state-000004.safetensors.tmp-a1B2c3") << "half a checkpoint"; }
  { std::ofstream(dir + "/stats.jsonl") << "{}\n"; }
  { std::ofstream(dir + "/.hidden.tmp-sevench") << "not ours"; }
  { std::ofstream(dir + "/victim.txt") << "precious"; }
  fs::create_symlink(dir + "/victim.txt", dir + "/.link.tmp-XXXXXX");  // a planted link is not followed
  EXPECT_EQ(remove_stale_temporaries(dir), 1);
  EXPECT_FALSE(fs::exists(dir + "/.training-state-000004.safetensors.tmp-a1B2c3"));
  EXPECT_TRUE(fs::exists(dir + "/stats.jsonl"));
  EXPECT_TRUE(fs::exists(dir + "/.hidden.tmp-sevench"));
  EXPECT_EQ(read_file(dir + "/victim.txt"), "precious");
}

TEST(Files, PortablePathKeepsRelativePathsAndOnlyTheNameOfAbsoluteOnes) {
  EXPECT_EQ(portable_path("models/teacher.safetensors"), "models/teacher.safetensors");
  EXPECT_EQ(portable_path("/work/teacher/runs"), "runs");
  EXPECT_EQ(portable_path("/usr/share/datasets/fashion-mnist/"), "fashion-mnist");
  EXPECT_EQ(portable_path(""), "");
}

TEST(Files, SpecialFilesAreRefusedNotRead) {
  std::string dir = temp_dir("special");
  expect_error([&] { read_file(dir); }, {dir, "is a directory"});
  expect_error([&] { read_file("/dev/zero"); }, {"/dev/zero", "not a regular file"});
  const std::string fifo = dir + "/fifo";
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  expect_error([&] { read_file(fifo); }, {fifo, "not a regular file"});  // returns at once: no writer needed
  expect_error([&] { require_regular_file(fifo); }, {fifo, "FIFO"});
  expect_error([&] { read_safetensors(fifo); }, {fifo, "not a regular file"});
  EXPECT_FALSE(is_torch_file(fifo));  // answered at once: opening a FIFO to sniff it blocked inspect
  expect_error([&] { read_file("/proc/self/mem"); }, {"/proc/self/mem", "pseudo-file"});  // size 0 in stat
  expect_error([&] { require_regular_file("/proc/self/status"); }, {"/proc/self/status", "pseudo-file"});
  { std::ofstream(dir + "/big") << std::string(100, 'x'); }
  expect_error([&] { read_file(dir + "/big", 10); }, {dir + "/big", "100 bytes", "limit"});
}

TEST(Files, MakeRunDirNumbersAndAppendLine) {
  std::string out = temp_dir("runs");
  std::string a = make_run_dir(out, "first");
  std::string b = make_run_dir(out, "second");
  EXPECT_EQ(fs::path(a).filename().string(), "00000-first");
  EXPECT_EQ(fs::path(b).filename().string(), "00001-second");
  fs::create_directory(out + "/00041-manual");
  EXPECT_EQ(fs::path(make_run_dir(out, "x")).filename().string(), "00042-x");

  append_line(a + "/log.jsonl", R"({"step": 1})");
  append_line(a + "/log.jsonl", R"({"step": 2})");
  EXPECT_EQ(read_file(a + "/log.jsonl"), "{\"step\": 1}\n{\"step\": 2}\n");
  expect_error([&] { read_file(a + "/missing"); }, {a + "/missing", "no such file"});
}

TEST(Errors, ControlCharactersCannotForgeLinesOrDriveTheTerminal) {
  // A tensor name with a newline and an escape sequence, as a hostile file may carry.
  expect_error([] { fail("evil.safetensors", "no tensor 'a\nerror: all good\x1b[2J'"); },
               {"evil.safetensors", "\\x0a", "\\x1b"});
  EXPECT_EQ(printable("ok\tline\r"), "ok\\x09line\\x0d");
}

TEST(Safetensors, DeeplyNestedHeaderValueIsAnErrorNotACrash) {
  // A shape entry nested 100,000 arrays deep: building the error message once recursed through it.
  const std::string dir = temp_dir("deep");
  const std::string nested = std::string(100000, '[') + std::string(100000, ']');
  const std::string header = R"({"x":{"dtype":"F32","shape":[)" + nested + R"(],"data_offsets":[0,4]}})";
  std::string bytes(8, '\0');
  const uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) bytes[i] = char((n >> (8 * i)) & 0xff);
  bytes += header + std::string(4, '\0');
  { std::ofstream(dir + "/deep.safetensors", std::ios::binary) << bytes; }
  // Refused before parsing: an ordered_json object copies its values (recursively) when it grows, which overflowed
  // the stack under AddressSanitizer.
  expect_error([&] { read_safetensors(dir + "/deep.safetensors"); },
               {"deep.safetensors", "JSON header", "nested deeper than 64 levels"});
}
