// The one exception type of the library: a sentence naming the file, the key or offset, and a hint.
// Library code throws it; the CLI's main prints e.what() on one line and exits with 1.
// Stable API (see pidistill/pidistill.h): Error (its what() text may be reworded).
#pragma once
#include <stdexcept>
#include <string>

namespace pidistill {

struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Control characters (newline, carriage return, terminal escapes) as \xNN: text from a file (a tensor name, a
// metadata value) can then neither split an error into a forged second line nor drive the user's terminal.
inline std::string printable(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (unsigned char c : text) {
    if (c < 0x20 || c == 0x7f) {
      static const char* hex = "0123456789abcdef";
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

// fail("model.pt", "key 'x' missing") -> throws Error("model.pt: key 'x' missing"), always one printable
// line.
[[noreturn]] inline void fail(const std::string& where, const std::string& what) {
  throw Error(printable(where.empty() ? what : where + ": " + what));
}

}  // namespace pidistill
