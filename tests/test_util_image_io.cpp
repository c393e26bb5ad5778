// EDM's uint8 mapping, PNG round trips, near-square grids, and errors on unreadable images.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>

#include "pidistill/util/error.h"
#include "pidistill/util/image_io.h"

using namespace pidistill;
namespace fs = std::filesystem;

namespace {
fs::path temp_dir(const std::string& name) {
  auto dir =
      fs::temp_directory_path() / ("pidistill_test_image_io_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

// An input the fuzzers found, kept in tests/fuzz/corpus/image/.
std::string image_corpus_file(const std::string& name) {
  std::ifstream in(std::string(PIDISTILL_SOURCE_DIR) + "/tests/fuzz/corpus/image/" + name, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// decode_image refuses `bytes` with an Error containing `message`.
void expect_refused(const std::string& bytes, const std::string& name, const std::string& message) {
  try {
    decode_image(bytes, name);
    ADD_FAILURE() << name << ": no Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(message), std::string::npos) << e.what();
  }
}
}  // namespace

TEST(ToUint8, ExtremesAndEdmRounding) {
  auto x = at::tensor({-1.0f, 1.0f, 0.0f, -2.0f, 2.0f, 0.5f}).view({1, 1, 1, 6});
  auto u = to_uint8(x);  // [1, 1, 6, 1]
  ASSERT_EQ(u.sizes(), (std::vector<int64_t>{1, 1, 6, 1}));
  ASSERT_EQ(u.scalar_type(), at::kByte);
  auto v = u.flatten();
  // -1 -> 0.5 -> 0; 1 -> 255.5 -> 255; 0 -> 128; clipped outside; 0.5 -> 191.75 -> 191.
  std::vector<int> expect{0, 255, 128, 0, 255, 191};
  for (size_t i = 0; i < expect.size(); ++i) EXPECT_EQ(v[i].item<int>(), expect[i]) << "i=" << i;
}

TEST(ToUint8, AllMinusOneAndPlusOneImages) {
  auto lo = to_uint8(at::full({2, 3, 4, 5}, -1.0));
  auto hi = to_uint8(at::full({2, 3, 4, 5}, 1.0));
  EXPECT_EQ(lo.sizes(), (std::vector<int64_t>{2, 4, 5, 3}));
  EXPECT_EQ(lo.max().item<int>(), 0);
  EXPECT_EQ(hi.min().item<int>(), 255);
}

TEST(ToUint8, ChannelsLastLayout) {
  auto x = at::zeros({1, 3, 2, 2});
  x[0][2][1][0] = 1.0;   // blue channel, row 1, column 0
  auto u = to_uint8(x);  // [1, 2, 2, 3]
  EXPECT_EQ(u[0][1][0][2].item<int>(), 255);
  EXPECT_EQ(u[0][1][0][0].item<int>(), 128);
}

TEST(ToUint8, RejectsWrongShape) { EXPECT_THROW(to_uint8(at::zeros({3, 4, 4})), Error); }

TEST(WritePng, RoundTripRgbAndGray) {
  auto dir = temp_dir("roundtrip");
  auto rgb = at::randint(0, 256, {7, 5, 3}, at::kByte);
  write_png((dir / "rgb.png").string(), rgb);
  for (const auto& e : fs::directory_iterator(dir))  // no temporary (".rgb.png.tmp-XXXXXX") left behind
    EXPECT_EQ(e.path().filename().string().find(".tmp"), std::string::npos) << e.path();
  EXPECT_TRUE(at::equal(read_image((dir / "rgb.png").string()), rgb));
  auto gray = at::randint(0, 256, {4, 6, 1}, at::kByte);
  write_png((dir / "gray.png").string(), gray);
  EXPECT_TRUE(at::equal(read_image((dir / "gray.png").string()), gray));
  fs::remove_all(dir);
}

TEST(WritePngGrid, NearSquareWithBlackPadding) {
  auto dir = temp_dir("grid");
  auto images = at::rand({5, 3, 4, 6}) * 2 - 1;  // 5 images -> 3 columns, 2 rows
  write_png_grid((dir / "grid.png").string(), images);
  auto grid = read_image((dir / "grid.png").string());  // [2*4, 3*6, 3]
  ASSERT_EQ(grid.sizes(), (std::vector<int64_t>{8, 18, 3}));
  auto u = to_uint8(images);
  EXPECT_TRUE(at::equal(grid.slice(0, 0, 4).slice(1, 6, 12), u[1]));     // row 0, column 1
  EXPECT_TRUE(at::equal(grid.slice(0, 4, 8).slice(1, 6, 12), u[4]));     // row 1, column 1
  EXPECT_EQ(grid.slice(0, 4, 8).slice(1, 12, 18).max().item<int>(), 0);  // empty cell
  write_png_grid((dir / "wide.png").string(), images, /*cols=*/5);
  EXPECT_EQ(read_image((dir / "wide.png").string()).sizes(), (std::vector<int64_t>{4, 30, 3}));
  fs::remove_all(dir);
}

TEST(ReadImage, ErrorsNameTheFile) {
  auto dir = temp_dir("errors");
  try {
    read_image((dir / "missing.png").string());
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("missing.png"), std::string::npos);
  }
  std::ofstream((dir / "junk.png").string()) << "not an image";
  try {
    read_image((dir / "junk.png").string());
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("junk.png"), std::string::npos);
  }
  fs::remove_all(dir);
}

// Found by fuzz_image: a 321-byte JPEG whose Huffman table declares more than 256 codes made stb_image 2.27
// write past its table; it is refused before stb decodes it. Formats other than PNG and JPEG are refused too.
TEST(ReadImage, HostileJpegAndOtherFormatsAreRefused) {
  const std::string bytes = image_corpus_file("crash-e4cd004906d04b30450e4debd0a68f84468bbba5");
  ASSERT_EQ(bytes.size(), 321u);
  expect_refused(bytes, "crash.jpg", "crash.jpg: JPEG Huffman table");
  // Also found by fuzz_image: a 75-byte PNG whose IDAT chunk claims 1.6 GB, which stb allocated before reading.
  expect_refused(image_corpus_file("oom-24a0caaf9afc228772287431fef7556d35f78052"), "oom.png",
                 "oom.png: PNG chunk 'IDAT' at byte 33 claims 1616904192 bytes");
  // Also found by fuzz_image (a timeout): a 559-byte JPEG claiming 65524x248 pixels, which stb decodes in
  // seconds; past 1024 pixels per byte it is refused. A uniform 1024x1024 PNG (~1,000:1) still decodes.
  const std::string slow = image_corpus_file("timeout-1e755d9908f54bcbfa56ca1f86531f66c2722423");
  ASSERT_EQ(slow.size(), 559u);
  expect_refused(slow, "slow.jpg", "slow.jpg: image of 65524x248 pixels from only 559 bytes");
  auto dir = temp_dir("flat");
  write_png((dir / "flat.png").string(), at::full({1024, 1024, 1}, 7, at::kByte));
  EXPECT_EQ(read_image((dir / "flat.png").string()).sizes().vec(), (std::vector<int64_t>{1024, 1024, 1}));
  fs::remove_all(dir);
  try {
    decode_image("GIF89a\x01\x00\x01\x00", "x.png");
    ADD_FAILURE() << "no Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("not a PNG or JPEG"), std::string::npos) << e.what();
  }
}
