// Small file helpers: atomic writes, reading a whole file, numbered run directories.
#pragma once
#include <string>

namespace pidistill {

// Writes PATH.tmp, flushes and fsyncs it, then renames it over PATH. On any failure (disk full included)
// PATH keeps its previous content, the temporary is removed, and Error names the path.
void write_file_atomic(const std::string& path, const std::string& bytes);

std::string read_file(const std::string& path);  // Error naming the path if it cannot be read

// EDM's run-directory convention: OUTDIR/NNNNN-DESC with NNNNN one past the largest existing number.
// Creates it and returns its path.
std::string make_run_dir(const std::string& outdir, const std::string& desc);

// Appends one line (a JSON object) to PATH, flushed at once so a crash loses nothing already logged.
void append_line(const std::string& path, const std::string& line);

}  // namespace pidistill
