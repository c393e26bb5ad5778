// Small file helpers: atomic writes, reading a whole file, numbered run directories.
#pragma once
#include <cstdint>
#include <string>

namespace pidistill {

// Writes PATH.tmp, flushes and fsyncs it, then renames it over PATH. On any failure (disk full included)
// PATH keeps its previous content, the temporary is removed, and Error names the path.
void write_file_atomic(const std::string& path, const std::string& bytes);

// The whole file. Error naming the path when it is missing, a directory, not a regular file (a FIFO would
// block, /dev/zero never ends), larger than max_bytes, or unreadable.
std::string read_file(const std::string& path, uint64_t max_bytes = uint64_t(1) << 40);

// Error naming the path unless it is an existing, readable regular file: a check before handing a path to a
// library that opens it itself (zlib, TorchScript), so a FIFO or a directory is refused instead of hanging.
void require_regular_file(const std::string& path);

// EDM's run-directory convention: OUTDIR/NNNNN-DESC with NNNNN one past the largest existing number.
// Creates it and returns its path.
std::string make_run_dir(const std::string& outdir, const std::string& desc);

// Rewrites a JSON-lines log (atomically) without the lines whose "step" is above `step`: a run resumed from
// the checkpoint of that step logs the later steps again. Lines without a step, or unparsable, are kept. No
// file: no-op.
void drop_lines_after_step(const std::string& path, int64_t step);

// Appends one line (a JSON object) to PATH, flushed at once so a crash loses nothing already logged.
void append_line(const std::string& path, const std::string& line);

}  // namespace pidistill
