// A minimal reader of zip archives held in memory (stored and deflate entries, zip64), enough for torch.save files.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace pidistill {

// The most any compressed input we read may expand (zip entries, gzip'd IDX files): real tensors, pickles, images
// and datasets deflate by 1-20:1; past 128:1 only long runs of equal bytes go, so more is a decompression bomb.
constexpr uint64_t kMaxAcceptedInflateRatio = 128;

struct ZipEntry {
  std::string name;
  uint16_t method = 0;         // 0 stored, 8 deflate
  uint32_t crc32 = 0;          // of the uncompressed bytes
  uint64_t compressed_size = 0;
  uint64_t size = 0;           // uncompressed
  uint64_t local_header = 0;   // offset of the entry's local file header
};

class ZipArchive {
 public:
  // Parses the end-of-central-directory record and the central directory of `bytes`; `path` names errors.
  ZipArchive(std::string path, std::string bytes);

  const std::vector<ZipEntry>& entries() const { return entries_; }
  const ZipEntry* find(const std::string& name) const;  // nullptr when absent
  // The entry's uncompressed bytes, CRC-checked; Error naming the path and entry on any fault.
  std::string read(const ZipEntry& entry) const;

 private:
  std::string path_;
  std::string bytes_;
  std::vector<ZipEntry> entries_;
};

}  // namespace pidistill
