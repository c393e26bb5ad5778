// Running the pidistill binary from tests: exit code and output, and a scratch folder per test process.
#pragma once
#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <string>

namespace pidistill::test {

struct CliResult {
  int code = -1;       // the exit status
  std::string output;  // stdout and stderr together
};

// Runs a shell command; stdout and stderr together.
inline CliResult run_command(const std::string& command) {
  CliResult result;
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (!pipe) return result;
  char buffer[4096];
  size_t n;
  while ((n = fread(buffer, 1, sizeof buffer, pipe)) > 0) result.output.append(buffer, n);
  const int status = pclose(pipe);
  result.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

// Runs `pidistill ARGS` through the shell; ARGS must be quoted by the caller where needed.
inline CliResult run_cli(const std::string& args) {
  return run_command(std::string("'") + PIDISTILL_CLI + "' " + args);
}

// A fresh folder under the system temp dir, removed when the test process ends.
inline const std::string& scratch_dir() {
  struct Dir {
    std::filesystem::path path;
    Dir() {
      path = std::filesystem::temp_directory_path() / ("pidistill_test_cli_" + std::to_string(getpid()));
      std::filesystem::remove_all(path);
      std::filesystem::create_directories(path);
    }
    ~Dir() { std::filesystem::remove_all(path); }
  };
  static Dir dir;
  static const std::string text = dir.path.string();
  return text;
}

inline std::string quoted(const std::string& s) { return "'" + s + "'"; }

// The one-line "error: ..." contract of main: exit status 1 and exactly one line of output.
#define EXPECT_ONE_LINE_ERROR(result)                                                       \
  do {                                                                                      \
    const auto& _r = (result);                                                              \
    EXPECT_EQ(_r.code, 1) << _r.output;                                                     \
    EXPECT_EQ(_r.output.rfind("error: ", 0), 0u) << _r.output;                              \
    EXPECT_EQ(_r.output.find('\n'), _r.output.size() - 1) << "not one line: " << _r.output; \
  } while (0)

}  // namespace pidistill::test
