// Dataset readers on small files written here: IDX (gz and raw), CIFAR-10 batches, PNG folders, EDM zips.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "pidistill/data/dataset.h"
#include "pidistill/util/error.h"
#include "pidistill/util/image_io.h"
#include "test_common.h"
#include "test_data_files.h"

using namespace pidistill;
using namespace pidistill::test;
namespace fs = std::filesystem;

TEST(IdxReader, GzipFolderWithLabelsAndPadding) {
  auto dir = make_temp_dir("idx_gz");
  write_gz(dir / "train-images-idx3-ubyte.gz", idx_images(5, 28, 28));
  write_gz(dir / "train-labels-idx1-ubyte.gz", idx_labels({3, 0, 9, 1, 3}));
  auto data = open_dataset(dir.string());
  EXPECT_EQ(data.size(), 5);
  EXPECT_EQ(data.channels(), 1);
  EXPECT_EQ(data.resolution(), 28);
  ASSERT_TRUE(data.has_labels());
  EXPECT_EQ(data.label_dim(), 10);
  EXPECT_EQ(data.raw_images()[2][0][0][1].item<int>(), (2 * 7 + 1) % 256);
  EXPECT_EQ(data.raw_labels()[2].item<int64_t>(), 9);

  DatasetOptions pad;
  pad.pad_to = 32;
  auto padded = open_dataset(dir.string(), pad);
  EXPECT_EQ(padded.resolution(), 32);
  auto x = padded.raw_images();  // [5, 1, 32, 32]
  EXPECT_TRUE(at::equal(x.slice(2, 2, 30).slice(3, 2, 30), data.raw_images()));
  EXPECT_EQ(x.slice(2, 0, 2).max().item<int>(), 0);  // border is pixel value 0 (black)
  EXPECT_EQ(x.slice(3, 30, 32).max().item<int>(), 0);
  EXPECT_EQ(padded.images(at::tensor({int64_t(0)}))[0][0][0][0].item<float>(), -1.0f);
  fs::remove_all(dir);
}

// An IDX folder without the split asked for names the split it lacks and those it has (it used to be read as an
// image folder: "no PNG or JPEG images found").
TEST(IdxReader, FolderWithoutTheSplitNamesIt) {
  auto dir = make_temp_dir("idx_split");
  write_gz(dir / "train-images-idx3-ubyte.gz", idx_images(5, 28, 28));
  write_gz(dir / "train-labels-idx1-ubyte.gz", idx_labels({3, 0, 9, 1, 3}));
  DatasetOptions test_split;
  test_split.split = "t10k";
  expect_error([&] { open_dataset(dir.string(), test_split); },
               {dir.string(), "t10k-images-idx3-ubyte", "has the split(s) train"});
  fs::remove_all(dir);
}

TEST(IdxReader, RawImagesFileFindsItsLabels) {
  auto dir = make_temp_dir("idx_raw");
  write_raw(dir / "t10k-images-idx3-ubyte", idx_images(3, 4, 4));
  write_raw(dir / "t10k-labels-idx1-ubyte", idx_labels({1, 2, 0}));
  auto data = open_dataset((dir / "t10k-images-idx3-ubyte").string());
  EXPECT_EQ(data.size(), 3);
  EXPECT_EQ(data.label_dim(), 3);
  DatasetOptions test_split;
  test_split.split = "t10k";
  EXPECT_EQ(open_dataset(dir.string(), test_split).size(), 3);
  test_split.use_labels = false;
  EXPECT_FALSE(open_dataset(dir.string(), test_split).has_labels());
  fs::remove_all(dir);
}

TEST(IdxReader, BadFilesNameFileAndOffset) {
  auto dir = make_temp_dir("idx_bad");
  write_raw(dir / "a-images-idx3-ubyte", idx_labels({1, 2}));  // a labels file where images are expected
  expect_error([&] { open_dataset((dir / "a-images-idx3-ubyte").string()); },
               {"a-images-idx3-ubyte", "0x00000801", "offset 0", "0x00000803"});
  std::string truncated = idx_images(4, 5, 5);
  truncated.resize(truncated.size() - 10);
  write_gz(dir / "b-images-idx3-ubyte.gz", truncated);
  expect_error([&] { open_dataset((dir / "b-images-idx3-ubyte.gz").string()); },
               {"b-images-idx3-ubyte.gz", "truncated", "offset 16"});
  write_raw(dir / "c-images-idx3-ubyte", idx_images(4, 5, 5));
  write_raw(dir / "c-labels-idx1-ubyte", idx_labels({1, 2, 3}));
  expect_error([&] { open_dataset((dir / "c-images-idx3-ubyte").string()); },
               {"c-labels-idx1-ubyte", "3 labels", "4 images"});
  write_raw(dir / "d-images-idx3-ubyte", "\x00\x00\x08");
  expect_error([&] { open_dataset((dir / "d-images-idx3-ubyte").string()); }, {"d-images-idx3-ubyte", "header"});
  // Size bombs: dimensions whose product overflows, and a small gzip inflating far past what its header says
  // (stopped as soon as it passes, not after gigabytes).
  write_raw(dir / "e-images-idx3-ubyte", be32(0x803) + be32(0xffffffff) + be32(0xffffffff) + be32(0xffffffff));
  expect_error([&] { open_dataset((dir / "e-images-idx3-ubyte").string()); },
               {"e-images-idx3-ubyte", "multiply to more than 2^40"});
  // Found by fuzz_idx: images of 0 columns (UBSan: memcpy from a null tensor).
  write_raw(dir / "g-images-idx3-ubyte", be32(0x803) + be32(2) + be32(0) + be32(5));
  expect_error([&] { open_dataset((dir / "g-images-idx3-ubyte").string()); },
               {"g-images-idx3-ubyte", "0x5", "no pixels"});
  write_gz(dir / "f-images-idx3-ubyte.gz", idx_images(1, 2, 2) + std::string(64u << 20, '\0'));
  ASSERT_LT(fs::file_size(dir / "f-images-idx3-ubyte.gz"), 200000u);
  expect_error([&] { open_dataset((dir / "f-images-idx3-ubyte.gz").string()); },
               {"f-images-idx3-ubyte.gz", "more than the 20 bytes its IDX header describes"});
  // A gzip whose header honestly describes 64 MiB of zero pixels (the class of the deflate bomb that
  // tests/hostile/sweep.py found in a .pt: 1 MB of it would take a gigabyte) is refused while inflating, past
  // 128:1 of the file's size.
  write_gz(dir / "h-images-idx3-ubyte.gz",
           be32(0x803) + be32(1) + be32(8192) + be32(8192) + std::string(64u << 20, '\0'));
  expect_error([&] { open_dataset((dir / "h-images-idx3-ubyte.gz").string()); },
               {"h-images-idx3-ubyte.gz", "decompresses to more than", "over 128:1"});
  fs::remove_all(dir);
}

TEST(Cifar10Reader, FolderOfBatchesAndErrors) {
  auto dir = make_temp_dir("cifar");
  std::string batch;
  for (int i = 0; i < 4; ++i) {
    batch.push_back(char(i % 10));
    for (int k = 0; k < 3072; ++k) batch.push_back(char((i + k) % 256));
  }
  write_raw(dir / "data_batch_1.bin", batch);
  write_raw(dir / "data_batch_2.bin", batch.substr(0, 3073));
  auto data = open_dataset(dir.string());
  EXPECT_EQ(data.size(), 5);
  EXPECT_EQ(data.channels(), 3);
  EXPECT_EQ(data.resolution(), 32);
  EXPECT_EQ(data.label_dim(), 10);
  EXPECT_EQ(data.raw_labels()[3].item<int64_t>(), 3);
  // CHW storage: byte 1 + 1024 of record 1 is channel 1 (green), row 0, column 0.
  EXPECT_EQ(data.raw_images()[1][1][0][0].item<int>(), (1 + 1024) % 256);
  EXPECT_TRUE(at::equal(data.labels(at::tensor({int64_t(2)})), at::one_hot(at::tensor({int64_t(2)}), 10).to(at::kFloat)));

  write_raw(dir / "odd.bin", batch.substr(0, 5000));
  expect_error([&] { open_dataset((dir / "odd.bin").string()); }, {"odd.bin", "5000", "3073"});
  std::string bad_label = batch;
  bad_label[3073] = char(42);
  write_raw(dir / "bad_label.bin", bad_label);
  expect_error([&] { open_dataset((dir / "bad_label.bin").string()); }, {"bad_label.bin", "42", "offset 3073"});
  fs::remove_all(dir);
}

TEST(ImageFolderReader, SortedRecursiveWithDatasetJson) {
  auto dir = make_temp_dir("folder");
  fs::create_directories(dir / "00000");
  fs::create_directories(dir / "00001");
  std::vector<std::string> names{"00001/img00000002.png", "00000/img00000000.png", "00000/img00000001.png"};
  for (size_t i = 0; i < names.size(); ++i) {
    auto img = at::full({6, 6, 3}, int64_t(i) * 50, at::kByte);  // [H, W, C]
    write_png((dir / names[i]).string(), img);
  }
  write_raw(dir / "dataset.json",
            R"({"labels": [["00000/img00000000.png", 6], ["00000/img00000001.png", 2], ["00001/img00000002.png", 4]]})");
  auto data = open_dataset(dir.string());
  ASSERT_EQ(data.size(), 3);
  EXPECT_EQ(data.resolution(), 6);
  // Sorted by relative path: 00000/..0, 00000/..1, 00001/..2, which were written with values 50, 100, 0.
  EXPECT_EQ(data.raw_images()[0][1][2][3].item<int>(), 50);
  EXPECT_EQ(data.raw_images()[2][0][0][0].item<int>(), 0);
  EXPECT_EQ(data.label_dim(), 7);
  EXPECT_EQ(data.raw_labels()[1].item<int64_t>(), 2);
  auto x = data.images(at::tensor({int64_t(1), int64_t(0)}));  // [2, 3, 6, 6]
  EXPECT_NEAR(x[0][0][0][0].item<float>(), 100 / 127.5 - 1, 1e-6);

  write_png((dir / "00001" / "small.png").string(), at::zeros({4, 4, 3}, at::kByte));
  expect_error([&] { open_dataset(dir.string()); }, {"00001/small.png", "4x4x3", "6x6x3"});
  fs::remove_all(dir);
}

TEST(ImageFolderReader, FolderWithoutJsonHasNoLabels) {
  auto dir = make_temp_dir("folder_nolabels");
  write_png((dir / "a.png").string(), at::zeros({5, 5, 1}, at::kByte));
  write_png((dir / "b.PNG").string(), at::zeros({5, 5, 1}, at::kByte));
  auto data = open_dataset(dir.string());
  EXPECT_EQ(data.size(), 2);
  EXPECT_EQ(data.channels(), 1);
  EXPECT_FALSE(data.has_labels());
  expect_error([&] { data.labels(at::tensor({int64_t(0)})); }, {"labels"});
  fs::remove_all(dir);
}

TEST(ImageZipReader, EdmZipWithLabels) {
  auto dir = make_temp_dir("zip");
  std::vector<std::pair<std::string, std::string>> files;
  for (int i = 0; i < 3; ++i) {
    auto tmp = dir / "tmp.png";
    write_png(tmp.string(), at::full({8, 8, 3}, int64_t(i) * 40, at::kByte));
    std::ifstream in(tmp, std::ios::binary);
    files.emplace_back("00000/img0000000" + std::to_string(2 - i) + ".png",
                       std::string(std::istreambuf_iterator<char>(in), {}));
  }
  files.emplace_back("dataset.json",
                     R"({"labels": [["00000/img00000000.png", 1], ["00000/img00000001.png", 0], ["00000/img00000002.png", 1]]})");
  write_raw(dir / "data.zip", stored_zip(files));
  auto data = open_dataset((dir / "data.zip").string());
  ASSERT_EQ(data.size(), 3);
  EXPECT_EQ(data.raw_images()[0][0][0][0].item<int>(), 80);  // img00000000 was written last, value 2*40
  EXPECT_EQ(data.label_dim(), 2);
  EXPECT_EQ(data.raw_labels()[0].item<int64_t>(), 1);
  // A label of 2^40 would make 2^40 classes (one-hot tensors, the label embedding; as an int it wrapped to 1
  // class), and labels nested 100,000 deep recurse when copied: both refused naming dataset.json.
  files.back().second = R"({"labels": [["00000/img00000000.png", 1099511627776]]})";
  write_raw(dir / "huge.zip", stored_zip(files));
  expect_error([&] { open_dataset((dir / "huge.zip").string()); },
               {"huge.zip/dataset.json", "label 1099511627776", "outside [0, 2^24)"});
  files.back().second = "{\"labels\": " + std::string(100000, '[') + std::string(100000, ']') + "}";
  write_raw(dir / "deep.zip", stored_zip(files));
  expect_error([&] { open_dataset((dir / "deep.zip").string()); },
               {"deep.zip/dataset.json", "nested deeper than 64 levels"});
  fs::remove_all(dir);
}

TEST(OpenDataset, MissingPathAndJunk) {
  expect_error([] { open_dataset("/nonexistent/pidistill/data"); }, {"/nonexistent/pidistill/data", "DATA: no such file or directory"});
  auto dir = make_temp_dir("junk");
  write_raw(dir / "junk.dat", "hello");
  expect_error([&] { open_dataset((dir / "junk.dat").string()); }, {"junk.dat", "unrecognised"});
  fs::create_directories(dir / "empty");
  expect_error([&] { open_dataset((dir / "empty").string()); }, {"empty", "no PNG or JPEG"});
  fs::remove_all(dir);
}
