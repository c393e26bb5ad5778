// open_dataset: looks at what the path holds and hands it to the matching reader, then applies the options.
#include <filesystem>

#include "pidistill/data/cifar10_reader.h"
#include "pidistill/data/dataset.h"
#include "pidistill/data/idx_reader.h"
#include "pidistill/data/image_folder_reader.h"
#include "pidistill/util/error.h"

namespace pidistill {

namespace fs = std::filesystem;

namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

Dataset read_any(const std::string& path, const DatasetOptions& options) {
  if (!fs::exists(path)) fail(path, "DATA: no such file or directory");
  fs::path p(path);
  if (fs::is_directory(p)) {
    for (const char* suffix : {"-images-idx3-ubyte", "-images-idx3-ubyte.gz"})
      if (fs::is_regular_file(p / (options.split + suffix))) return read_idx_dataset(path, options.split);
    if (fs::is_regular_file(p / "data_batch_1.bin") || fs::is_regular_file(p / "test_batch.bin"))
      return read_cifar10_dataset(path, options.split);
    // An IDX folder without the split asked for is not an image folder: say which split is missing.
    std::string idx_splits;
    std::error_code ec;  // an unreadable folder is left to read_image_folder, which names the problem
    for (const auto& entry : fs::directory_iterator(p, ec)) {
      const std::string name = entry.path().filename().string();
      const size_t at = name.find("-images-idx3-ubyte");
      if (at != std::string::npos && at > 0) idx_splits += (idx_splits.empty() ? "" : ", ") + name.substr(0, at);
    }
    if (!idx_splits.empty())
      fail(path, "DATA: no '" + options.split + "-images-idx3-ubyte[.gz]' in this IDX folder (it has the split(s) " +
                     idx_splits + ")");
    return read_image_folder(path);
  }
  std::string name = p.filename().string();
  if (ends_with(name, ".zip")) return read_image_zip(path);
  if (ends_with(name, ".bin")) return read_cifar10_dataset(path, options.split);
  if (name.find("idx3-ubyte") != std::string::npos) return read_idx_dataset(path, options.split);
  // An unnamed file: IDX images are recognised by their magic number (read_idx_dataset checks it fully).
  std::string head = read_maybe_gzip(path, /*first_bytes=*/4).substr(0, 4);
  if (head == std::string("\0\0\x08\x03", 4)) return read_idx_dataset(path, options.split);
  fail(path, "DATA: unrecognised dataset format (expected an IDX file, a CIFAR-10 .bin, an EDM .zip, or a folder)");
}

}  // namespace

Dataset open_dataset(const std::string& path, const DatasetOptions& options) {
  Dataset data = read_any(path, options);
  if (!options.use_labels) data.drop_labels();
  if (options.pad_to > 0) data.pad_to(options.pad_to);
  return data;
}

}  // namespace pidistill
