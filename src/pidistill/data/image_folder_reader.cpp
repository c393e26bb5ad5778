// Image folders in EDM's layout: every image file, sorted by relative path; labels matched by that same path.
#include "pidistill/data/image_folder_reader.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>

#include "pidistill/util/error.h"
#include "pidistill/util/files.h"
#include "pidistill/util/image_io.h"
#include "pidistill/util/json_depth.h"

namespace pidistill {

namespace fs = std::filesystem;

namespace {

std::string shape_text(const at::Tensor& hwc) {
  return std::to_string(hwc.size(0)) + "x" + std::to_string(hwc.size(1)) + "x" + std::to_string(hwc.size(2));
}

// name -> label from dataset.json; empty map when the file is absent or its labels are null.
std::map<std::string, int64_t> parse_labels(const std::string& text, const std::string& where) {
  std::map<std::string, int64_t> labels;
  if (text.empty()) return labels;
  check_json_depth(text, /*max_depth=*/64, where);  // EDM's is 3 deep; copies and dump() recurse
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const std::exception& e) {
    fail(where, std::string("not valid JSON: ") + e.what());
  }
  if (!j.is_object() || !j.contains("labels") || j["labels"].is_null()) return labels;
  if (!j["labels"].is_array()) fail(where, "key 'labels' must be a list of [name, label] pairs or null");
  for (const auto& pair : j["labels"]) {
    if (!pair.is_array() || pair.size() != 2 || !pair[0].is_string() || !pair[1].is_number_integer())
      fail(where, "key 'labels': entry " + pair.dump() + " is not a [name, integer label] pair");
    // Why a bound: the number of classes is the largest label + 1, and it sizes one-hot tensors and the
    // network's label embedding (2^24 as the network config's label_dim).
    if (!pair[1].is_number_unsigned() || pair[1].get<uint64_t>() >= (uint64_t(1) << 24))
      fail(where, "key 'labels': label " + pair[1].dump() + " of '" + pair[0].get<std::string>() +
                      "' is outside [0, 2^24)");
    labels[pair[0].get<std::string>()] = pair[1].get<int64_t>();
  }
  return labels;
}

}  // namespace

bool is_image_name(const std::string& name) {
  auto ext = fs::path(name).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  return ext == ".png" || ext == ".jpg" || ext == ".jpeg";
}

Dataset images_to_dataset(const std::vector<std::string>& names, const std::function<std::string(const std::string&)>& load,
                          const std::string& dataset_json, const std::string& source) {
  if (names.empty()) fail(source, "DATA: no PNG or JPEG images found (hint: pass a folder or an EDM dataset .zip)");
  int64_t n = int64_t(names.size());
  std::vector<at::Tensor> decoded(names.size());  // each [H, W, C] uint8
  // Why parallel: decoding dominates loading (tens of thousands of small PNGs); the check below stays in order.
  at::parallel_for(0, n, 64, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) decoded[i] = decode_image(load(names[i]), source + "/" + names[i]);
  });
  auto first = decoded[0].sizes().vec();  // [H, W, C]
  std::string first_text = shape_text(decoded[0]);
  auto images = at::empty({n, first[2], first[0], first[1]}, at::kByte);  // [N, C, H, W]
  for (int64_t i = 0; i < n; ++i) {
    if (decoded[i].sizes().vec() != first)
      fail(source + "/" + names[i], "image is " + shape_text(decoded[i]) + " (HxWxC) but " + names[0] + " is " +
                                         first_text + " (hint: all images of a dataset must share one size)");
    images[i].copy_(decoded[i].permute({2, 0, 1}));
    decoded[i] = at::Tensor();
  }

  auto label_map = parse_labels(dataset_json, source + "/dataset.json");
  at::Tensor labels;
  int64_t label_dim = 0;
  if (!label_map.empty()) {
    labels = at::empty({n}, at::kLong);
    auto y = labels.accessor<int64_t, 1>();
    for (int64_t i = 0; i < n; ++i) {
      auto it = label_map.find(names[i]);
      if (it == label_map.end()) fail(source + "/dataset.json", "no label for image '" + names[i] + "'");
      if (it->second < 0) fail(source + "/dataset.json", "negative label for image '" + names[i] + "'");
      y[i] = it->second;
      label_dim = std::max(label_dim, it->second + 1);  // as EDM: max label + 1
    }
  }
  return Dataset(images, labels, label_dim, source);
}

Dataset read_image_folder(const std::string& path) {
  if (!fs::is_directory(path)) fail(path, "DATA: no such file or directory");
  std::vector<std::string> names;
  for (const auto& entry : fs::recursive_directory_iterator(path, fs::directory_options::follow_directory_symlink)) {
    if (entry.is_regular_file() && is_image_name(entry.path().string()))
      names.push_back(fs::relative(entry.path(), path).generic_string());
  }
  std::sort(names.begin(), names.end());
  auto json_path = fs::path(path) / "dataset.json";
  std::string json = fs::is_regular_file(json_path) ? read_file(json_path.string()) : "";
  auto root = fs::path(path);
  return images_to_dataset(names, [&](const std::string& name) { return read_file((root / name).string()); }, json,
                           path);
}

}  // namespace pidistill
