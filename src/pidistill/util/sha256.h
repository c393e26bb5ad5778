// SHA-256 of a file (OpenSSL), to notice when a file a run depends on (its teacher) has changed under it.
#pragma once
#include <string>

namespace pidistill {

// Lower-case hex digest of the file's bytes, read in chunks; Error naming the path if it cannot be read.
std::string sha256_file(const std::string& path);

}  // namespace pidistill
