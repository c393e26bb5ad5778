// What this process runs on, for --version and bug reports: LibTorch's version and which malloc is in use.
#pragma once

#include <string>

namespace pidistill {

// "tcmalloc" when gperftools' allocator is the process's malloc (CMake links it when found), else "glibc".
std::string malloc_name();

// One line: "LibTorch 1.13.0, malloc tcmalloc".
std::string build_info();

}  // namespace pidistill
