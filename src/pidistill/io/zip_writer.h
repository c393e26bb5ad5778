// A minimal writer of stored (uncompressed) zip archives in memory: the layout np.savez writes for npz files.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace pidistill {

class ZipWriter {
 public:
  // `path` only names errors (the archive is built in memory; write it with write_file_atomic).
  explicit ZipWriter(std::string path) : path_(std::move(path)) {}

  // Appends a stored entry. Error on a duplicate name, or on sizes past the 32-bit limits (no zip64 here).
  // align > 1: the data starts at a multiple of `align` bytes in the archive (padding in the local header's
  // extra field, as torch.save aligns its records to 64 bytes for memory mapping).
  void add(const std::string& name, const std::string& data, uint32_t align = 1);
  // The whole archive: local headers and data, central directory, end-of-central-directory record.
  std::string finish() const;

 private:
  struct Entry {
    std::string name;
    uint32_t crc32;
    uint32_t size;
    uint32_t local_header;  // offset of the local file header in body_
  };
  std::string path_;
  std::string body_;  // local headers followed by their data
  std::vector<Entry> entries_;
};

}  // namespace pidistill
