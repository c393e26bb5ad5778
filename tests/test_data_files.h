// Test helpers that write small dataset files: gzip, IDX, CIFAR records, stored zip archives.
#pragma once
#include <zlib.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

namespace pidistill::test {

inline std::filesystem::path make_temp_dir(const std::string& name) {
  auto dir = std::filesystem::temp_directory_path() / ("pidistill_test_" + name + "_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

inline void write_raw(const std::filesystem::path& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary).write(bytes.data(), std::streamsize(bytes.size()));
}

inline void write_gz(const std::filesystem::path& path, const std::string& bytes) {
  gzFile f = gzopen(path.string().c_str(), "wb");
  gzwrite(f, bytes.data(), unsigned(bytes.size()));
  gzclose(f);
}

inline std::string be32(uint32_t v) {
  return std::string{char(v >> 24), char((v >> 16) & 255), char((v >> 8) & 255), char(v & 255)};
}

// IDX images: magic 0x803, N, rows, cols, then the pixels; pixel k of image i is (i * 7 + k) % 256.
inline std::string idx_images(uint32_t n, uint32_t rows, uint32_t cols) {
  std::string s = be32(0x803) + be32(n) + be32(rows) + be32(cols);
  for (uint32_t i = 0; i < n; ++i)
    for (uint32_t k = 0; k < rows * cols; ++k) s.push_back(char((i * 7 + k) % 256));
  return s;
}

inline std::string idx_labels(const std::vector<uint8_t>& labels) {
  std::string s = be32(0x801) + be32(uint32_t(labels.size()));
  for (auto l : labels) s.push_back(char(l));
  return s;
}

inline std::string le16(uint32_t v) { return std::string{char(v & 255), char((v >> 8) & 255)}; }
inline std::string le32(uint32_t v) { return le16(v & 0xffff) + le16(v >> 16); }

// A zip archive with stored (uncompressed) entries, as `zip -0` writes it.
inline std::string stored_zip(const std::vector<std::pair<std::string, std::string>>& files) {
  std::string body, central;
  for (const auto& [name, data] : files) {
    uint32_t crc = uint32_t(crc32(0, reinterpret_cast<const Bytef*>(data.data()), uInt(data.size())));
    uint32_t offset = uint32_t(body.size());
    std::string common = le16(20) + le16(0) + le16(0) + le16(0) + le16(0) + le32(crc) + le32(uint32_t(data.size())) +
                         le32(uint32_t(data.size())) + le16(uint32_t(name.size())) + le16(0);
    body += le32(0x04034b50) + common + name + data;
    central += le32(0x02014b50) + le16(20) + common + le16(0) + le16(0) + le16(0) + le32(0) + le32(offset) + name;
  }
  std::string eocd = le32(0x06054b50) + le16(0) + le16(0) + le16(uint32_t(files.size())) +
                     le16(uint32_t(files.size())) + le32(uint32_t(central.size())) + le32(uint32_t(body.size())) +
                     le16(0);
  return body + central + eocd;
}

}  // namespace pidistill::test
