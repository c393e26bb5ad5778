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

}  // namespace pidistill
