// Shared by the libFuzzer targets: the input as a file (the readers take paths, as the commands do), and the
// rule every target checks: a hostile input may only end in a pidistill::Error (the one-line message a user
// reads); anything else escaping (std::bad_alloc, a LibTorch c10::Error, std::out_of_range) is a finding, and so
// is any crash, leak, hang or sanitizer report. The same sources build as replay programs in the normal build.
#pragma once
#include "pidistill/util/error.h"

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <string>

namespace pidistill::fuzz {

// A per-process scratch folder in /dev/shm when there is one (no disk writes per execution).
inline std::string scratch(const std::string& name) {
  static const std::string dir = [] {
    const std::filesystem::path base =
        std::filesystem::exists("/dev/shm") ? std::filesystem::path("/dev/shm") : std::filesystem::temp_directory_path();
    const std::filesystem::path d = base / ("pidistill_fuzz_" + std::to_string(::getpid()));
    std::filesystem::create_directories(d);
    return d.string();
  }();
  return dir + "/" + name;
}

inline std::string write_input(const std::string& name, const uint8_t* data, size_t size) {
  const std::string path = scratch(name);
  std::ofstream(path, std::ios::binary | std::ios::trunc).write(reinterpret_cast<const char*>(data), size);
  return path;
}

// Runs `f`; a pidistill::Error is the expected way to refuse; anything else aborts with what escaped.
template <class F>
void expect_only_errors(const char* target, F&& f) {
  try {
    f();
  } catch (const Error&) {
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: non-pidistill exception escaped: %s\n", target, e.what());
    std::abort();
  } catch (...) {
    std::fprintf(stderr, "%s: unknown exception escaped\n", target);
    std::abort();
  }
}

}  // namespace pidistill::fuzz
