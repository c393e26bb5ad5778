// Atomic writes, whole-file reads, numbered run directories and append-only logs.
#include "pidistill/util/files.h"

#include "pidistill/util/error.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace fs = std::filesystem;

namespace pidistill {

namespace {

std::string errno_text() { return std::strerror(errno); }

// Writes all bytes to fd, retrying short writes; false (errno set) on failure.
bool write_all(int fd, const char* data, size_t size) {
  while (size > 0) {
    ssize_t n = ::write(fd, data, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

}  // namespace

void write_file_atomic(const std::string& path, const std::string& bytes) {
  const std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) fail(path, "cannot create temporary file '" + tmp + "': " + errno_text() + " (is the folder writable?)");
  // Why fsync before rename: otherwise a power loss can leave PATH renamed but empty.
  bool ok = write_all(fd, bytes.data(), bytes.size()) && ::fsync(fd) == 0;
  std::string why = ok ? "" : errno_text();
  if (::close(fd) != 0 && ok) {
    ok = false;
    why = errno_text();
  }
  if (ok && std::rename(tmp.c_str(), path.c_str()) != 0) {
    ok = false;
    why = errno_text();
  }
  if (!ok) {
    ::unlink(tmp.c_str());
    fail(path, "write failed: " + why + " (disk full or folder not writable?); previous content kept");
  }
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, std::string("cannot open for reading: ") + errno_text());
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) fail(path, "read error");
  return ss.str();
}

std::string make_run_dir(const std::string& outdir, const std::string& desc) {
  std::error_code ec;
  fs::create_directories(outdir, ec);
  if (ec) fail(outdir, "cannot create output folder: " + ec.message());
  // Like EDM: the next id is one past the largest leading number among existing entries.
  long next_id = 0;
  for (const auto& entry : fs::directory_iterator(outdir, ec)) {
    std::string name = entry.path().filename().string();
    size_t digits = 0;
    while (digits < name.size() && std::isdigit(static_cast<unsigned char>(name[digits]))) ++digits;
    if (digits == 0 || digits > 9) continue;
    next_id = std::max(next_id, std::stol(name.substr(0, digits)) + 1);
  }
  if (ec) fail(outdir, "cannot list output folder: " + ec.message());
  char prefix[32];
  std::snprintf(prefix, sizeof(prefix), "%05ld", next_id);
  fs::path run_dir = fs::path(outdir) / (std::string(prefix) + "-" + desc);
  if (!fs::create_directory(run_dir, ec) || ec)
    fail(run_dir.string(), "cannot create run folder" + (ec ? ": " + ec.message() : std::string(" (already exists)")));
  return run_dir.string();
}

void append_line(const std::string& path, const std::string& line) {
  std::FILE* f = std::fopen(path.c_str(), "ab");
  if (!f) fail(path, std::string("cannot open for appending: ") + errno_text());
  std::string text = line + "\n";
  bool ok = std::fwrite(text.data(), 1, text.size(), f) == text.size() && std::fflush(f) == 0;
  std::string why = ok ? "" : errno_text();
  if (std::fclose(f) != 0 && ok) {
    ok = false;
    why = errno_text();
  }
  if (!ok) fail(path, "append failed: " + why);
}

}  // namespace pidistill
