// Folders (or EDM .zip archives) of PNG/JPEG images, with labels from EDM's dataset.json when present.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "pidistill/data/dataset.h"

namespace pidistill {

// All .png/.jpg/.jpeg files under `path`, recursively, sorted by relative path (with '/' separators).
Dataset read_image_folder(const std::string& path);
// An EDM dataset zip (dataset_tool.py output): its image entries sorted by name, dataset.json if present.
Dataset read_image_zip(const std::string& path);

// Shared by both: decodes `names` (relative paths) with `load` (name -> encoded bytes), checks that all share
// one size, and takes labels from dataset_json ({"labels": [[name, label], ...]} or null; "" = no file).
Dataset images_to_dataset(const std::vector<std::string>& names, const std::function<std::string(const std::string&)>& load,
                          const std::string& dataset_json, const std::string& source);

bool is_image_name(const std::string& name);  // .png, .jpg, .jpeg in any case

}  // namespace pidistill
