// EDM dataset zips (dataset_tool.py --dest=x.zip), read with the io library's zip reader.
#include <algorithm>

#include "pidistill/data/image_folder_reader.h"
#include "pidistill/io/zip_archive.h"
#include "pidistill/util/files.h"

namespace pidistill {

Dataset read_image_zip(const std::string& path) {
  ZipArchive zip(path, read_file(path));
  std::vector<std::string> names;
  for (const auto& e : zip.entries())
    if (is_image_name(e.name)) names.push_back(e.name);
  std::sort(names.begin(), names.end());
  const ZipEntry* json = zip.find("dataset.json");
  return images_to_dataset(
      names,
      [&](const std::string& name) { return zip.read(*zip.find(name)); },
      json ? zip.read(*json) : "", path);
}

}  // namespace pidistill
