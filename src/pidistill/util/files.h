// Small file helpers: atomic writes, reading a whole file, numbered run directories.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

namespace pidistill {

// Writes a fresh temporary ".PATH.tmp-XXXXXX" beside PATH (mkstemp: O_EXCL, so a planted link cannot redirect
// it), fsyncs it, renames it over PATH and fsyncs the folder. On any failure (disk full included) PATH keeps its
// previous content, the temporary is removed, and Error names the path.
void write_file_atomic(const std::string& path, const std::string& bytes);
// The same, for content made piece by piece: `produce` calls `write(data, size)` for each piece in order, so a
// large file (a checkpoint) never has to exist in memory whole. An exception from `produce` removes the
// temporary and propagates.
using WriteBytes = std::function<void(const void* data, size_t size)>;
void write_file_atomic(const std::string& path, const std::function<void(const WriteBytes& write)>& produce);

// Removes the temporaries that a killed write_file_atomic left in `dir` (".NAME.tmp-XXXXXX", regular files
// only; never followed links). Called when a run resumes in its folder. Returns how many were removed.
int remove_stale_temporaries(const std::string& dir);

// The whole file. Error naming the path when it is missing, a directory, not a regular file (a FIFO would
// block, /dev/zero never ends), larger than max_bytes, or unreadable.
std::string read_file(const std::string& path, uint64_t max_bytes = uint64_t(1) << 40);

// Error naming the path unless it is an existing, readable regular file: a check before handing a path to a
// library that opens it itself (zlib, TorchScript), so a FIFO or a directory is refused instead of hanging.
void require_regular_file(const std::string& path);

// EDM's run-directory convention: OUTDIR/NNNNN-DESC with NNNNN one past the largest existing number.
// Creates it and returns its path.
std::string make_run_dir(const std::string& outdir, const std::string& desc);

// Rewrites a JSON-lines log (atomically) without the lines whose integer `key` ("step", or train's "tick") is
// above `step`: a run resumed from the checkpoint of that step logs the later steps again. Lines without the
// key, or unparsable, are kept. No file: no-op.
void drop_lines_after_step(const std::string& path, int64_t step, const std::string& key = "step");

// A path as recorded in files that travel (network and student files, training options): a relative path as
// given, an absolute one by its last component only, so no file names the folders of the machine it was made on.
std::string portable_path(const std::string& path);

// Appends one line (a JSON object) to PATH, flushed at once so a crash loses nothing already logged.
void append_line(const std::string& path, const std::string& line);

}  // namespace pidistill
