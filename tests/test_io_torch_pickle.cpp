// torch.save zip reader: the golden .pt files against the golden safetensors, and one test per kind of bad file.
#include "pidistill/io/torch_pickle.h"
#include "pidistill/io/zip_archive.h"
#include "pidistill/util/error.h"
#include "pidistill/util/files.h"
#include "test_common.h"

#include <unistd.h>
#include <zlib.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <string>

namespace fs = std::filesystem;
using namespace pidistill;
using pidistill::test::expect_error;

namespace {

std::string temp_path(const std::string& name) {
  fs::path dir = fs::temp_directory_path() / ("pidistill_test_pickle_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  return (dir / name).string();
}

void put_le(std::string& s, uint64_t v, int n) {
  for (int i = 0; i < n; ++i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

// A stored (or deflated) zip of the given records, written the way any zip tool lays it out.
// With zip64, the classic end record is saturated and the real values sit in a zip64 record, as large files need.
std::string make_zip(const std::vector<std::pair<std::string, std::string>>& records, bool deflated = false,
                     bool zip64 = false) {
  std::string out, central;
  for (const auto& [name, data] : records) {
    std::string payload = data;
    if (deflated) {
      z_stream zs{};
      deflateInit2(&zs, 6, Z_DEFLATED, -MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
      payload.resize(deflateBound(&zs, data.size()));
      zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
      zs.avail_in = data.size();
      zs.next_out = reinterpret_cast<Bytef*>(payload.data());
      zs.avail_out = payload.size();
      ::deflate(&zs, Z_FINISH);
      payload.resize(zs.total_out);
      deflateEnd(&zs);
    }
    const uint32_t crc = crc32(0L, reinterpret_cast<const Bytef*>(data.data()), data.size());
    const uint64_t local = out.size();
    put_le(out, 0x04034b50, 4);
    put_le(out, 20, 2);
    put_le(out, 0, 2);
    put_le(out, deflated ? 8 : 0, 2);
    put_le(out, 0, 4);  // time, date
    put_le(out, crc, 4);
    put_le(out, payload.size(), 4);
    put_le(out, data.size(), 4);
    put_le(out, name.size(), 2);
    put_le(out, 0, 2);
    out += name + payload;
    put_le(central, 0x02014b50, 4);
    put_le(central, 20, 2);
    put_le(central, 20, 2);
    put_le(central, 0, 2);
    put_le(central, deflated ? 8 : 0, 2);
    put_le(central, 0, 4);
    put_le(central, crc, 4);
    put_le(central, payload.size(), 4);
    put_le(central, data.size(), 4);
    put_le(central, name.size(), 2);
    put_le(central, 0, 2);
    put_le(central, 0, 2);
    put_le(central, 0, 2);
    put_le(central, 0, 2);
    put_le(central, 0, 4);
    put_le(central, local, 4);
    central += name;
  }
  const uint64_t cd_offset = out.size();
  out += central;
  if (zip64) {
    const uint64_t z64 = out.size();
    put_le(out, 0x06064b50, 4);
    put_le(out, 44, 8);  // size of the rest of this record
    put_le(out, 45, 2);
    put_le(out, 45, 2);
    put_le(out, 0, 8);  // disk numbers
    put_le(out, records.size(), 8);
    put_le(out, records.size(), 8);
    put_le(out, central.size(), 8);
    put_le(out, cd_offset, 8);
    put_le(out, 0x07064b50, 4);  // locator
    put_le(out, 0, 4);
    put_le(out, z64, 8);
    put_le(out, 1, 4);
  }
  put_le(out, 0x06054b50, 4);
  put_le(out, 0, 4);
  put_le(out, zip64 ? 0xffff : records.size(), 2);
  put_le(out, zip64 ? 0xffff : records.size(), 2);
  put_le(out, zip64 ? 0xffffffff : central.size(), 4);
  put_le(out, zip64 ? 0xffffffff : cd_offset, 4);
  put_le(out, 0, 2);
  return out;
}

// Pickle of {'w': tensor of 3 floats from storage '0'} by hand, protocol 2, the way torch.save writes it.
std::string tiny_pickle(const std::string& storage_key = "0") {
  std::string p = std::string("\x80\x02}q\x00(X\x01\x00\x00\x00wq\x01", 14) +
                  "ctorch._utils\n_rebuild_tensor_v2\nq\x02((" + std::string("X\x07\x00\x00\x00storage", 12);
  p += "ctorch\nFloatStorage\nX";
  put_le(p, storage_key.size(), 4);
  p += storage_key;
  p += std::string("X\x03\x00\x00\x00" "cpuK\x03tQK\x00K\x03\x85K\x01\x85\x89", 21);
  p += "ccollections\nOrderedDict\n)Rtq\x03Rq\x04u.";
  return p;
}

std::string float_bytes(std::initializer_list<float> v) {
  std::string s(v.size() * 4, '\0');
  std::memcpy(s.data(), std::data(v), s.size());
  return s;
}

void expect_same_as_safetensors(const NamedTensors& got, const TensorFile& ref) {
  ASSERT_EQ(got.size(), ref.tensors.size());
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_EQ(got[i].first, ref.tensors[i].first) << "key order differs at " << i;
    const at::Tensor& a = got[i].second;
    const at::Tensor& b = ref.tensors[i].second;
    ASSERT_EQ(a.scalar_type(), b.scalar_type()) << got[i].first;
    ASSERT_EQ(a.sizes(), b.sizes()) << got[i].first;
    // Bit-identical: compare the raw bytes, not values (NaN-safe, -0 vs +0 aware).
    ASSERT_EQ(std::memcmp(a.contiguous().data_ptr(), b.contiguous().data_ptr(), a.numel() * a.element_size()), 0)
        << got[i].first;
  }
}

// Removes this run's temporary files once all tests are done.
struct TempCleanup : ::testing::Environment {
  void TearDown() override { fs::remove_all(fs::path(temp_path("x")).parent_path()); }
};
const auto* const cleanup = ::testing::AddGlobalTestEnvironment(new TempCleanup);

}  // namespace

TEST(TorchPickle, OrderedDictStateDictEqualsSafetensors) {
  const std::string pt = test::golden("ddpmpp_uncond_state_dict.pt");
  EXPECT_TRUE(is_zip_file(pt));
  expect_same_as_safetensors(read_torch_checkpoint(pt), test::load_golden("ddpmpp_uncond_weights.safetensors"));
}

TEST(TorchPickle, PlainDictEqualsSafetensors) {
  expect_same_as_safetensors(read_torch_checkpoint(test::golden("ddpmpp_uncond_plain_dict.pt")),
                             test::load_golden("ddpmpp_uncond_weights.safetensors"));
}

TEST(TorchPickle, HandMadeZipStoredDeflatedAndZip64) {
  for (int variant = 0; variant < 3; ++variant) {  // stored, deflated, stored with zip64 end records
    std::string path = temp_path("tiny" + std::to_string(variant) + ".pt");
    write_file_atomic(path, make_zip({{"tiny/data.pkl", tiny_pickle()}, {"tiny/data/0", float_bytes({1.5f, -2.f, 3.f})},
                                      {"tiny/version", "3\n"}},
                                     /*deflated=*/variant == 1, /*zip64=*/variant == 2));
    NamedTensors t = read_torch_checkpoint(path);
    ASSERT_EQ(t.size(), 1u);
    EXPECT_EQ(t[0].first, "w");
    EXPECT_TRUE(at::equal(t[0].second, at::tensor({1.5f, -2.f, 3.f})));
  }
}

TEST(TorchPickle, NotAZip) {
  std::string path = temp_path("random.pt");
  write_file_atomic(path, std::string("\x80\x02\x8a\x0al\xfc\x9c" "F\xf9 j\xa8P\x19.random bytes", 27));
  EXPECT_FALSE(is_zip_file(path));
  expect_error([&] { read_torch_checkpoint(path); }, {path, "not a zip torch.save file", "torch >= 1.6", "safetensors"});
}

TEST(TorchPickle, TruncatedZip) {
  std::string bytes = read_file(test::golden("ddpmpp_uncond_plain_dict.pt"));
  std::string path = temp_path("truncated.pt");
  write_file_atomic(path, bytes.substr(0, bytes.size() / 2));
  expect_error([&] { read_torch_checkpoint(path); }, {path, "truncated zip"});
  // The data in the middle lost but the end record intact: the central directory now lies past the end.
  std::string path2 = temp_path("lost_middle.pt");
  write_file_atomic(path2, bytes.substr(0, bytes.size() / 2) + bytes.substr(bytes.size() - 22));
  expect_error([&] { read_torch_checkpoint(path2); }, {path2, "truncated zip", "central directory beyond"});
}

TEST(TorchPickle, DamagedDataFailsCrc) {
  std::string zip = make_zip({{"t/data.pkl", tiny_pickle()}, {"t/data/0", float_bytes({1, 2, 3})}});
  const size_t at = zip.find("t/data/0") + 8;  // first data byte of the storage record
  zip[at] ^= 0x55;
  std::string path = temp_path("crc.pt");
  write_file_atomic(path, zip);
  expect_error([&] { read_torch_checkpoint(path); }, {path, "'t/data/0'", "CRC mismatch"});
}

TEST(TorchPickle, UnsupportedOpcode) {
  std::string pkl = tiny_pickle();
  const size_t at = pkl.find("K\x03t");  // replace BININT1 3 (the numel) with an opcode we do not know
  ASSERT_NE(at, std::string::npos);
  pkl[at] = '\xfe';
  std::string path = temp_path("opcode.pt");
  write_file_atomic(path, make_zip({{"t/data.pkl", pkl}, {"t/data/0", float_bytes({1, 2, 3})}}));
  expect_error([&] { read_torch_checkpoint(path); },
               {path, "data.pkl byte " + std::to_string(at), "unsupported pickle opcode 0xfe"});
}

TEST(TorchPickle, MissingStorageRecord) {
  std::string path = temp_path("missing.pt");
  write_file_atomic(path, make_zip({{"t/data.pkl", tiny_pickle("7")}, {"t/data/0", float_bytes({1, 2, 3})}}));
  expect_error([&] { read_torch_checkpoint(path); }, {path, "storage '7'", "'t/data/7'"});
}

TEST(TorchPickle, ViewBeyondStorage) {
  std::string path = temp_path("short_storage.pt");
  write_file_atomic(path, make_zip({{"t/data.pkl", tiny_pickle()}, {"t/data/0", float_bytes({1, 2})}}));
  expect_error([&] { read_torch_checkpoint(path); }, {path, "beyond storage '0'"});
}

// Size bombs: what a record or a view claims is checked against what the file holds before anything is allocated.
TEST(TorchPickle, ZipRecordClaimingMoreThanDeflateCanGiveIsRefused) {
  std::string zip = make_zip({{"t/data.pkl", tiny_pickle()}, {"t/data/0", float_bytes({1, 2, 3})}},
                             /*deflated=*/true);
  // The central directory's uncompressed size of data.pkl (offset 24 of its header) now claims ~4 GiB.
  const size_t central = zip.find(std::string("PK\x01\x02", 4));
  ASSERT_NE(central, std::string::npos);
  for (int i = 0; i < 4; ++i) zip[central + 24 + i] = '\xfe';
  std::string path = temp_path("bomb.pt");
  write_file_atomic(path, zip);
  ASSERT_LT(zip.size(), 1000u);
  expect_error([&] { read_torch_checkpoint(path); },
               {path, "'t/data.pkl'", "claims 4278124286 bytes", "more than deflate can expand"});
}

// A real deflate bomb: the record truly inflates to what it claims (64 MiB of zeros from ~64 KB), but no real
// tensor or pickle deflates past 128:1; a 1 MB file of such records would take a gigabyte (found by
// tests/hostile/sweep.py: 900 MiB from 0.9 MB took the run to 1.18 GB). Data of 128:1 still loads.
TEST(TorchPickle, ZipRecordInflatingPast128To1IsRefused) {
  const std::string zeros(64u << 20, '\0');
  std::string path = temp_path("real_bomb.pt");
  const std::string zip = make_zip({{"t/data.pkl", tiny_pickle()}, {"t/data/0", zeros}}, /*deflated=*/true);
  ASSERT_LT(zip.size(), 100000u);
  write_file_atomic(path, zip);
  expect_error([&] { read_torch_checkpoint(path); },
               {path, "'t/data/0'", "claims 67108864 bytes", "more than 128:1"});
  std::string text;
  for (int i = 0; text.size() < 100000; ++i) text += std::to_string(i * 7919 % 1000003) + ",";
  const std::string ok = make_zip({{"a", text}}, /*deflated=*/true);
  write_file_atomic(path, ok);
  ZipArchive archive(path, read_file(path));
  EXPECT_EQ(archive.read(*archive.find("a")), text);
}

TEST(TorchPickle, ZipRecordShorterThanItsClaimIsRefused) {
  std::string zip = make_zip({{"t/data.pkl", tiny_pickle()}, {"t/data/0", float_bytes({1, 2, 3})}},
                             /*deflated=*/true);
  const size_t central = zip.find(std::string("PK\x01\x02", 4));
  const uint32_t claimed = static_cast<uint32_t>(tiny_pickle().size()) + 100;  // within deflate's ratio
  for (int i = 0; i < 4; ++i) zip[central + 24 + i] = static_cast<char>((claimed >> (8 * i)) & 0xff);
  std::string path = temp_path("short_deflate.pt");
  write_file_atomic(path, zip);
  expect_error([&] { read_torch_checkpoint(path); }, {path, "'t/data.pkl'", "deflate data is corrupt or truncated"});
}

TEST(TorchPickle, StrideZeroViewExpandingItsStorageIsRefused) {
  // The tensor's size (3,) stride (1,) becomes size (300000000,) stride (0,): 1.2 GB from 3 stored floats.
  std::string pkl = tiny_pickle();
  const std::string view = std::string("K\x03\x85K\x01\x85", 6);
  const size_t at = pkl.find(view);
  ASSERT_NE(at, std::string::npos);
  std::string big("J");
  put_le(big, 300000000, 4);
  pkl.replace(at, view.size(), big + std::string("\x85K\x00\x85", 4));
  std::string path = temp_path("stride0.pt");
  write_file_atomic(path, make_zip({{"t/data.pkl", pkl}, {"t/data/0", float_bytes({1, 2, 3})}}));
  ASSERT_LT(fs::file_size(path), 1000u);
  expect_error([&] { read_torch_checkpoint(path); },
               {path, "300000000 elements", "storage '0' of only 3 items", "stride 0"});
  // An overlapping view within the storage's size is fine: (3,) with stride 0 repeats the first value.
  std::string small = tiny_pickle();
  small.replace(small.find(view), view.size(), std::string("K\x03\x85K\x00\x85", 6));
  std::string path2 = temp_path("stride0_small.pt");
  write_file_atomic(path2, make_zip({{"t/data.pkl", small}, {"t/data/0", float_bytes({7, 2, 3})}}));
  NamedTensors t = read_torch_checkpoint(path2);
  ASSERT_EQ(t.size(), 1u);
  EXPECT_TRUE(at::equal(t[0].second, at::tensor({7.f, 7.f, 7.f})));
}

// Found by fuzz_torch_pickle (tests/fuzz/corpus/torch_pickle/crash-ac8070fb...): a 54-byte file whose end record
// points to a zip64 record; "n - 56" wrapped around and the reader read past the end of the file.
TEST(TorchPickle, Zip64RecordInAFileShorterThanItIsRefused) {
  const unsigned char raw[] = {0x50, 0x4b, 0x03, 0x04, 0x00, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x23, 0x50, 0x4b,
                               0x06, 0x07, 0x00, 0x00, 0x00, 0x00, 0xc9, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                               0x01, 0x00, 0x00, 0x00, 0x50, 0x4b, 0x05, 0x06, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                               0xff, 0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00};
  std::string path = temp_path("short_zip64.pt");
  write_file_atomic(path, std::string(reinterpret_cast<const char*>(raw), sizeof raw));
  expect_error([&] { read_torch_checkpoint(path); }, {path, "truncated zip", "zip64 end-of-central-directory"});
}

TEST(TorchPickle, NoDataPkl) {
  std::string path = temp_path("nopkl.pt");
  write_file_atomic(path, make_zip({{"readme.txt", "hello"}}));
  expect_error([&] { read_torch_checkpoint(path); }, {path, "data.pkl"});
}

TEST(TorchPickle, NestedDictKeysJoinedAndNonTensorsSkipped) {
  // {'ema': {'w': tensor}, 'step': 5}: the inner dict is tiny_pickle's, without its PROTO and STOP.
  const std::string inner = tiny_pickle().substr(2, tiny_pickle().size() - 3);
  std::string pkl = std::string("\x80\x02}(X\x03\x00\x00\x00", 9) + "ema" + inner +
                    std::string("X\x04\x00\x00\x00", 5) + "stepK\x05u.";
  std::string path = temp_path("nested.pt");
  write_file_atomic(path, make_zip({{"n/data.pkl", pkl}, {"n/data/0", float_bytes({4, 5, 6})}}));
  NamedTensors t = read_torch_checkpoint(path);
  ASSERT_EQ(t.size(), 1u);
  EXPECT_EQ(t[0].first, "ema.w");
  EXPECT_TRUE(at::equal(t[0].second, at::tensor({4.f, 5.f, 6.f})));
}
