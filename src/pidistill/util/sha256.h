// SHA-256 of a file (OpenSSL), to notice when a file a run depends on (its teacher) has changed under it.
#pragma once
#include <cstddef>
#include <initializer_list>
#include <string>
#include <utility>

namespace pidistill {

// Lower-case hex digest of the file's bytes, read in chunks; Error naming the path if it cannot be read.
std::string sha256_file(const std::string& path);

// Lower-case hex digest of the bytes of `pieces` in order (e.g. a dataset's images, then its labels).
std::string sha256_bytes(std::initializer_list<std::pair<const void*, size_t>> pieces);

// A digest fed piece by piece (e.g. a network's tensors one at a time, never all in one buffer).
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void update(const void* data, size_t size);
  void update(const std::string& text) { update(text.data(), text.size()); }
  std::string hex();  // lower-case hex; call once

 private:
  void* ctx_;  // EVP_MD_CTX, kept out of this header
};

}  // namespace pidistill
