// npz = a zip (stored or deflated) of NAME.npy entries; read through ZipArchive, written through ZipWriter.
#include "pidistill/io/npz.h"

#include "pidistill/io/npy.h"
#include "pidistill/io/zip_archive.h"
#include "pidistill/io/zip_writer.h"
#include "pidistill/util/error.h"
#include "pidistill/util/files.h"

#include <ATen/ATen.h>

namespace pidistill {

NamedTensors read_npz(const std::string& path) {
  std::string bytes = read_file(path);
  // Why check up front: a plain .npy (np.save) passed where an npz is expected deserves its own hint.
  if (bytes.compare(0, 6, "\x93NUMPY") == 0)
    fail(path, "is a single .npy array, not an npz (zip); save with np.savez(path, name=array)");
  if (bytes.compare(0, 2, "PK") != 0)
    fail(path, "not an npz file (no zip signature 'PK' at byte 0); write it with np.savez");
  ZipArchive zip(path, std::move(bytes));
  NamedTensors out;
  for (const auto& e : zip.entries()) {
    const std::string suffix = ".npy";
    if (e.name.size() <= suffix.size() ||
        e.name.compare(e.name.size() - suffix.size(), suffix.size(), suffix) != 0)
      fail(path, "entry '" + e.name + "' is not an .npy array (np.savez writes NAME.npy entries only)");
    const std::string name = e.name.substr(0, e.name.size() - suffix.size());
    out.emplace_back(name, parse_npy(path, name, zip.read(e)));
  }
  return out;
}

void write_npz(const std::string& path, const NamedTensors& arrays) {
  ZipWriter zip(path);
  for (const auto& [name, t] : arrays) zip.add(name + ".npy", npy_bytes(path, name, t));
  write_file_atomic(path, zip.finish());
}

}  // namespace pidistill
