// CIFAR-10 binary format: no header, fixed 3073-byte records, labels 0..9.
#include "pidistill/data/cifar10_reader.h"

#include <ATen/ATen.h>

#include <cstring>
#include <filesystem>

#include "pidistill/util/error.h"
#include "pidistill/util/files.h"

namespace pidistill {

namespace fs = std::filesystem;

namespace {
constexpr int64_t kPixels = 3 * 32 * 32;
constexpr int64_t kRecord = 1 + kPixels;
}  // namespace

Dataset read_cifar10_dataset(const std::string& path, const std::string& split) {
  std::vector<std::string> files;
  if (fs::is_directory(path)) {
    if (split == "test") {
      if (fs::is_regular_file(fs::path(path) / "test_batch.bin")) files.push_back((fs::path(path) / "test_batch.bin").string());
    } else {
      for (int i = 1; i <= 5; ++i) {
        auto f = fs::path(path) / ("data_batch_" + std::to_string(i) + ".bin");
        if (fs::is_regular_file(f)) files.push_back(f.string());
      }
    }
    if (files.empty())
      fail(path, "DATA: no CIFAR-10 " + std::string(split == "test" ? "test_batch.bin" : "data_batch_N.bin") +
                     " in this folder");
  } else {
    files.push_back(path);
  }

  std::vector<at::Tensor> images, labels;
  for (const auto& file : files) {
    std::string bytes = read_file(file);
    if (bytes.empty() || bytes.size() % kRecord != 0)
      fail(file, "size " + std::to_string(bytes.size()) + " is not a positive multiple of the 3073-byte CIFAR-10 "
                 "record (hint: is this the binary version, not the python pickle?)");
    int64_t n = int64_t(bytes.size()) / kRecord;
    auto raw = at::empty({n, kRecord}, at::kByte);  // [n, 1 + 3*32*32]
    std::memcpy(raw.data_ptr<uint8_t>(), bytes.data(), bytes.size());
    auto y = raw.select(1, 0).to(at::kLong);  // [n]
    int64_t bad = (y > 9).nonzero().numel() ? (y > 9).nonzero()[0][0].item<int64_t>() : -1;
    if (bad >= 0)
      fail(file, "label " + std::to_string(y[bad].item<int64_t>()) + " at offset " + std::to_string(bad * kRecord) +
                     " is not in 0..9 (hint: CIFAR-100 records have 2 label bytes)");
    images.push_back(raw.narrow(1, 1, kPixels).reshape({n, 3, 32, 32}));  // CHW as stored
    labels.push_back(y);
  }
  return Dataset(at::cat(images).contiguous(), at::cat(labels), /*label_dim=*/10, files.size() == 1 ? files[0] : path);
}

}  // namespace pidistill
