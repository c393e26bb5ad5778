// Atomic writes, whole-file reads, numbered run directories and append-only logs.
#include "pidistill/util/files.h"

#include "pidistill/util/error.h"

#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/vfs.h>
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

constexpr long kProcSuperMagic = 0x9fa0;  // linux/magic.h PROC_SUPER_MAGIC
constexpr long kSysfsMagic = 0x62656572;  // SYSFS_MAGIC

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

struct WriteFailed {  // a failed write(2) inside write_file_atomic's `produce`, carrying strerror's text
  std::string why;
};

}  // namespace

void write_file_atomic(const std::string& path, const std::string& bytes) {
  write_file_atomic(path, [&](const WriteBytes& write) { write(bytes.data(), bytes.size()); });
}

void write_file_atomic(const std::string& path, const std::function<void(const WriteBytes& write)>& produce) {
  // Why a fresh hidden name from mkstemp: it is created with O_EXCL, so a symlink planted at the temporary
  // path cannot redirect the write to another file, two writers never share one, and a temporary left by a
  // kill (".NAME.tmp-XXXXXX") never matches the globs that look for NAME-like files
  // (training-state-*.safetensors).
  const fs::path target(path);
  const fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
  std::string tmp = (dir / ("." + target.filename().string() + ".tmp-XXXXXX")).string();
  int fd = ::mkstemp(tmp.data());
  if (fd < 0)
    fail(path, "cannot create a temporary file in '" + dir.string() + "': " + errno_text() +
                   " (is the folder writable?)");
  const mode_t mask = ::umask(0);
  ::umask(mask);
  bool ok = ::fchmod(fd, 0666 & ~mask) == 0;  // mkstemp makes 0600; a saved file gets the user's usual mode
  std::string why = ok ? "" : errno_text();
  if (ok) {
    try {
      produce([fd](const void* data, size_t size) {
        if (!write_all(fd, static_cast<const char*>(data), size)) throw WriteFailed{errno_text()};
      });
      // Why fsync before rename: otherwise a power loss can leave PATH renamed but empty.
      if (::fsync(fd) != 0) ok = false, why = errno_text();
    } catch (const WriteFailed& e) {
      ok = false, why = e.why;
    } catch (...) {
      ::close(fd);
      ::unlink(tmp.c_str());
      throw;
    }
  }
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
  // Why fsync the folder: the rename itself lives in the folder; without it a power loss can bring back the
  // previous name. Best effort: some file systems refuse fsync on a directory.
  const int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd >= 0) {
    ::fsync(dir_fd);
    ::close(dir_fd);
  }
}

int remove_stale_temporaries(const std::string& dir) {
  int removed = 0;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    const size_t at = name.rfind(".tmp-");
    // Only our own pattern: ".NAME.tmp-XXXXXX" (mkstemp's six characters), a regular file, not a link.
    if (name.size() < 2 || name[0] != '.' || at == std::string::npos || name.size() - at != 11) continue;
    if (!e.is_regular_file(ec) || e.is_symlink(ec)) continue;
    if (fs::remove(e.path(), ec)) ++removed;
  }
  return removed;
}

namespace {

// Error naming the path unless the mode is a regular file's (one wording for stat and fstat callers).
void check_regular(const std::string& path, const struct stat& st) {
  if (S_ISDIR(st.st_mode)) fail(path, "is a directory, not a file");
  if (!S_ISREG(st.st_mode))
    fail(path, "not a regular file (a FIFO, socket or device); hint: give a file on disk");
}

}  // namespace

void require_regular_file(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) fail(path, "no such file");
    fail(path, "cannot open: " + errno_text());
  }
  check_regular(path, st);
  struct statfs fs_info;
  if (::statfs(path.c_str(), &fs_info) == 0 &&
      (fs_info.f_type == kProcSuperMagic || fs_info.f_type == kSysfsMagic))
    fail(path, "a /proc or /sys pseudo-file, not a file on disk");
  if (::access(path.c_str(), R_OK) != 0) fail(path, "cannot read: " + errno_text());
}

std::string read_file(const std::string& path, uint64_t max_bytes) {
  // O_NONBLOCK: opening a FIFO must not wait for a writer; the fstat below refuses it anyway.
  int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) fail(path, "no such file");
    fail(path, std::string("cannot open for reading: ") + errno_text());
  }
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    const std::string why = errno_text();
    ::close(fd);
    fail(path, "cannot stat: " + why);
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    check_regular(path, st);
  }
  // Why: /proc and /sys files are "regular" but report size 0 (/proc/self/mem was "truncated: 0 bytes").
  struct statfs fs_info;
  if (::fstatfs(fd, &fs_info) == 0 && (fs_info.f_type == kProcSuperMagic || fs_info.f_type == kSysfsMagic)) {
    ::close(fd);
    fail(path, "a /proc or /sys pseudo-file, not a file on disk");
  }
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  if (size > max_bytes) {
    ::close(fd);
    fail(path, "file of " + std::to_string(size) + " bytes is larger than the " + std::to_string(max_bytes) +
                   "-byte limit for this kind of file");
  }
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  std::string bytes(size, '\0');
  size_t done = 0;
  while (done < size) {
    ssize_t n = ::read(fd, bytes.data() + done, size - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    done += static_cast<size_t>(n);
  }
  ::close(fd);
  if (done != size)
    fail(path, "read error: got " + std::to_string(done) + " of " + std::to_string(size) + " bytes");
  return bytes;
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
    fail(run_dir.string(),
         "cannot create run folder" + (ec ? ": " + ec.message() : std::string(" (already exists)")));
  return run_dir.string();
}

void drop_lines_after_step(const std::string& path, int64_t step, const std::string& key) {
  if (!fs::exists(path)) return;
  std::istringstream in(read_file(path));
  std::string kept, line;
  bool dropped = false;
  while (std::getline(in, line)) {
    nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_object() && j.contains(key) && j[key].is_number_integer() && j[key].get<int64_t>() > step) {
      dropped = true;
      continue;
    }
    kept += line + "\n";
  }
  if (dropped) write_file_atomic(path, kept);
}

std::string portable_path(const std::string& path) {
  const fs::path p(path);
  if (!p.is_absolute()) return path;
  const fs::path normal = p.lexically_normal();
  const std::string name = (normal.has_filename() ? normal : normal.parent_path()).filename().string();
  return name;
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
