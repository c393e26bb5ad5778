// The one exception type of the library: a sentence naming the file, the key or offset, and a hint.
// Library code throws it; the CLI's main prints e.what() on one line and exits with 1.
#pragma once
#include <stdexcept>
#include <string>

namespace pidistill {

struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// fail("model.pt", "key 'x' missing") -> throws Error("model.pt: key 'x' missing").
[[noreturn]] inline void fail(const std::string& where, const std::string& what) {
  throw Error(where.empty() ? what : where + ": " + what);
}

}  // namespace pidistill
