// Helpers shared by the tests: golden file paths, tensor comparison with a stated tolerance.
#pragma once
#include "pidistill/io/safetensors.h"
#include "pidistill/util/error.h"

#include <ATen/ATen.h>
#include <ATen/Context.h>
#include <gtest/gtest.h>

#include <sys/resource.h>

#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <initializer_list>
#include <iostream>
#include <string>

namespace pidistill::test {

inline std::string golden(const std::string& name) { return std::string(PIDISTILL_GOLDEN_DIR) + "/" + name; }
inline TensorFile load_golden(const std::string& name) { return read_safetensors(golden(name)); }

// The device the golden parity tests compute on: $PIDISTILL_TEST_DEVICE, default cpu (scripts/device/check.sh sets
// cuda). On CUDA, TF32 is switched off: float32 there must mean float32, as on the CPU the golden files came from.
inline at::Device test_device() {
  static const at::Device device = [] {
    const char* name = std::getenv("PIDISTILL_TEST_DEVICE");
    at::Device d(name != nullptr && *name != '\0' ? name : "cpu");
    if (d.is_cuda()) {
      at::globalContext().setAllowTF32CuDNN(false);
      at::globalContext().setAllowTF32CuBLAS(false);
    }
    return d;
  }();
  return device;
}
// A golden input on the test device (an undefined tensor stays undefined).
inline at::Tensor on_device(const at::Tensor& t) { return t.defined() ? t.to(test_device()) : t; }

// max|a - ref| / max|ref|, computed in float64 on the CPU (either may live on the test device).
inline double rel_err(const at::Tensor& a, const at::Tensor& ref) {
  auto r = ref.to(at::kCPU, at::kDouble), x = a.to(at::kCPU, at::kDouble);
  double scale = r.abs().max().item<double>();
  double diff = (x - r).abs().max().item<double>();
  return scale > 0 ? diff / scale : diff;
}

// Asserts rel_err <= tol and prints the worst error either way, so a passing run still reports its margin.
#define EXPECT_CLOSE(a, ref, tol)                                                  \
  do {                                                                             \
    auto _a = (a);                                                                 \
    auto _r = (ref);                                                               \
    ASSERT_EQ(_a.sizes(), _r.sizes()) << #a;                                       \
    double _e = ::pidistill::test::rel_err(_a, _r);                                \
    std::cout << "[ rel err ] " << #a << ": " << _e << " (tol " << (tol) << ")\n"; \
    EXPECT_LE(_e, (tol)) << #a << " vs " << #ref;                                  \
  } while (0)

// Runs `f` and expects a pidistill::Error: one line, containing every one of `parts` (the file, the key or
// offset, the problem). Prints the message, so a passing run still shows what a user would read.
template <class F>
void expect_error(F&& f, std::initializer_list<std::string> parts) {
  try {
    f();
    ADD_FAILURE() << "no Error thrown";
  } catch (const Error& e) {
    std::string msg = e.what();
    std::cout << "[ error ] " << msg << "\n";
    EXPECT_EQ(msg.find('\n'), std::string::npos) << "not one line: " << msg;
    for (const auto& p : parts) EXPECT_NE(msg.find(p), std::string::npos) << "'" << p << "' not in: " << msg;
  }
}

// Files in `dir` that an atomic write leaves while it runs (".NAME.tmp-XXXXXX"): none may remain afterwards.
inline int count_temporaries(const std::string& dir) {
  int n = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir))
    if (e.path().filename().string().find(".tmp") != std::string::npos) ++n;
  return n;
}

// Runs `f` in a death-test child whose files may not grow past `bytes` (RLIMIT_FSIZE: writes fail with EFBIG
// as on a full disk); the child exits 0 when `f` returns. Use inside EXPECT_EXIT(...,
// testing::ExitedWithCode(0), "").
template <class F>
[[noreturn]] void with_file_size_limit(rlim_t bytes, F&& f) {
  std::signal(SIGXFSZ, SIG_IGN);  // else the kernel kills the writer instead of failing the write
  rlimit limit{bytes, bytes};
  setrlimit(RLIMIT_FSIZE, &limit);
  f();
  std::exit(0);
}

}  // namespace pidistill::test
