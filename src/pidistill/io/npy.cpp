// .npy parsing and writing per numpy's format.py (NEP 1): the header is a Python dict literal such as
// "{'descr': '<f8', 'fortran_order': False, 'shape': (2048,), }", parsed here by a small recursive reader.
#include "pidistill/io/npy.h"

#include "pidistill/util/error.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

namespace pidistill {

namespace {

constexpr char kMagic[] = "\x93NUMPY";
constexpr size_t kMagicLen = 6;
constexpr size_t kAlign = 64;  // numpy's ARRAY_ALIGN: data start at a multiple of 64 bytes

struct Descr {
  const char* name;  // without the byte-order character
  at::ScalarType type;
  size_t itemsize;
};
constexpr Descr kDescrs[] = {
    {"f8", at::kDouble, 8}, {"f4", at::kFloat, 4}, {"f2", at::kHalf, 2},
    {"i8", at::kLong, 8},   {"i4", at::kInt, 4},   {"i2", at::kShort, 2},
    {"i1", at::kChar, 1},   {"u1", at::kByte, 1},  {"b1", at::kBool, 1},
};

// The parsed header dict: only the three keys numpy writes.
struct Header {
  std::string descr;
  bool fortran_order = false;
  std::vector<int64_t> shape;
  bool has_descr = false, has_order = false, has_shape = false;
};

// Reads the dict literal; `fail_at` reports the offending position.
class HeaderParser {
 public:
  HeaderParser(std::string text, std::string where) : s_(std::move(text)), where_(std::move(where)) {}

  Header parse() {
    Header h;
    expect('{');
    while (true) {
      skip_space();
      if (peek() == '}') break;
      const std::string key = string_literal();
      expect(':');
      skip_space();
      if (key == "descr") {
        // Why a separate message: a list here is a structured (record) dtype, not a damaged header.
        if (peek() == '[') bad("structured dtype (descr is a list); save each field as its own array");
        h.descr = string_literal();
        h.has_descr = true;
      } else if (key == "fortran_order") {
        h.fortran_order = boolean();
        h.has_order = true;
      } else if (key == "shape") {
        h.shape = int_tuple();
        h.has_shape = true;
      } else {
        bad("unknown header key '" + key + "' (expected descr, fortran_order, shape)");
      }
      skip_space();
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      skip_space();
      if (peek() != '}') bad("expected ',' or '}'");
    }
    if (!h.has_descr || !h.has_order || !h.has_shape)
      bad("header lacks one of 'descr', 'fortran_order', 'shape'");
    return h;
  }

 private:
  [[noreturn]] void bad(const std::string& what) const {
    fail(where_,
         "npy header: " + what + " at header byte " + std::to_string(pos_) + " (not a file np.save wrote?)");
  }
  char peek() const { return pos_ < s_.size() ? s_[pos_] : '\0'; }
  void skip_space() {
    while (pos_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[pos_]))) ++pos_;
  }
  void expect(char c) {
    skip_space();
    if (peek() != c) bad(std::string("expected '") + c + "'");
    ++pos_;
  }
  std::string string_literal() {
    skip_space();
    const char quote = peek();
    if (quote != '\'' && quote != '"') bad("expected a quoted string");
    const size_t end = s_.find(quote, pos_ + 1);
    if (end == std::string::npos) bad("unterminated string");
    std::string out = s_.substr(pos_ + 1, end - pos_ - 1);
    pos_ = end + 1;
    return out;
  }
  bool boolean() {
    if (s_.compare(pos_, 4, "True") == 0) return pos_ += 4, true;
    if (s_.compare(pos_, 5, "False") == 0) return pos_ += 5, false;
    bad("fortran_order must be True or False");
  }
  std::vector<int64_t> int_tuple() {
    expect('(');
    std::vector<int64_t> dims;
    while (true) {
      skip_space();
      if (peek() == ')') break;
      if (!std::isdigit(static_cast<unsigned char>(peek())))
        bad("shape must be a tuple of non-negative integers");
      int64_t v = 0;
      while (std::isdigit(static_cast<unsigned char>(peek()))) {
        const int digit = peek() - '0';
        if (v > (std::numeric_limits<int64_t>::max() - digit) / 10) bad("shape dimension overflows int64");
        v = v * 10 + digit;
        ++pos_;
      }
      dims.push_back(v);
      skip_space();
      if (peek() == ',')
        ++pos_;
      else if (peek() != ')')
        bad("expected ',' or ')' in shape");
    }
    ++pos_;
    return dims;
  }

  std::string s_;
  std::string where_;
  size_t pos_ = 0;
};

const Descr& find_descr(const std::string& where, const std::string& descr) {
  if (descr.size() == 3) {
    const char order = descr[0];
    const std::string code = descr.substr(1);
    for (const auto& d : kDescrs) {
      if (code != d.name) continue;
      // Why '>' is fine for one byte: byte order means nothing there (numpy writes '|').
      if (order == '<' || order == '|' || order == '=' || (order == '>' && d.itemsize == 1)) return d;
      if (order == '>')
        fail(where,
             "big-endian dtype '" + descr + "' is not supported; convert with arr.astype('<" + code + "')");
    }
  }
  if (descr.find('O') != std::string::npos)
    fail(where,
         "object dtype '" + descr + "' is not supported (pickled Python objects); save numeric arrays");
  fail(where, "unsupported dtype '" + descr + "' (supported: <f8 <f4 <f2 <i8 <i4 <i2 |i1 |u1 |b1)");
}

uint64_t le(const std::string& b, size_t pos, int n) {
  uint64_t v = 0;
  for (int i = n - 1; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(b[pos + i]);
  return v;
}

// numpy's repr of a shape tuple: "()", "(3,)", "(2, 3)".
std::string shape_repr(at::IntArrayRef shape) {
  std::string out = "(";
  for (size_t i = 0; i < shape.size(); ++i) out += (i ? ", " : "") + std::to_string(shape[i]);
  return out + (shape.size() == 1 ? ",)" : ")");
}

}  // namespace

at::Tensor parse_npy(const std::string& path, const std::string& name, const std::string& bytes) {
  const std::string where = path + ": array '" + name + "'";
  if (bytes.size() < kMagicLen + 2 || bytes.compare(0, kMagicLen, kMagic, kMagicLen) != 0)
    fail(where, "bad magic (not an .npy entry; the file is not what np.save/np.savez write)");
  const int major = static_cast<unsigned char>(bytes[6]);
  if (major < 1 || major > 3)
    fail(where, "npy format version " + std::to_string(major) + "." +
                    std::to_string(static_cast<unsigned char>(bytes[7])) +
                    " is not supported (1.0, 2.0, 3.0)");
  const size_t len_bytes = major == 1 ? 2 : 4;
  const size_t prefix = kMagicLen + 2 + len_bytes;
  if (bytes.size() < prefix)
    fail(where, "truncated: " + std::to_string(bytes.size()) + " bytes end inside the header");
  const uint64_t header_len = le(bytes, kMagicLen + 2, static_cast<int>(len_bytes));
  if (header_len > bytes.size() - prefix)
    fail(where, "truncated: header of " + std::to_string(header_len) + " bytes runs past the " +
                    std::to_string(bytes.size()) + "-byte entry");
  const Header h = HeaderParser(bytes.substr(prefix, header_len), where).parse();
  const Descr& d = find_descr(where, h.descr);

  // Why the guard: a hostile shape could wrap the product around to match the data size; and even with a 0
  // in it, the other dimensions make the strides, which must fit int64 (found by fuzz_npz: (0, 9e18) made
  // LibTorch throw from permute).
  uint64_t numel = 1, span = 1;
  const uint64_t limit = static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) / d.itemsize;
  for (int64_t dim : h.shape) {
    const uint64_t extent = dim > 0 ? static_cast<uint64_t>(dim) : 1;
    if (span > limit / extent) fail(where, "shape " + shape_repr(h.shape) + " overflows (damaged header)");
    span *= extent;
    numel *= static_cast<uint64_t>(dim);
  }
  const uint64_t want = numel * d.itemsize, have = bytes.size() - prefix - header_len;
  if (want != have)
    fail(where, std::string(have < want ? "truncated" : "size mismatch") + ": shape " + shape_repr(h.shape) +
                    " of " + h.descr + " needs " + std::to_string(want) + " data bytes, the entry holds " +
                    std::to_string(have));

  // Fortran order is C order of the reversed shape, transposed back.
  std::vector<int64_t> stored(h.shape.begin(), h.shape.end());
  if (h.fortran_order) std::reverse(stored.begin(), stored.end());
  // Why bool goes through uint8: a byte other than 0/1 must not become an invalid C++ bool.
  const at::ScalarType read_type = d.type == at::kBool ? at::kByte : d.type;
  at::Tensor t = at::empty(stored, at::TensorOptions().dtype(read_type));
  if (want > 0) std::memcpy(t.data_ptr(), bytes.data() + prefix + header_len, want);
  if (d.type == at::kBool) t = t.ne(0);
  if (h.fortran_order && t.dim() > 1) {
    std::vector<int64_t> perm(t.dim());
    for (int64_t i = 0; i < t.dim(); ++i) perm[i] = t.dim() - 1 - i;
    t = t.permute(perm).contiguous();
  }
  return t;
}

std::string npy_bytes(const std::string& path, const std::string& name, const at::Tensor& array) {
  const Descr* d = nullptr;
  for (const auto& c : kDescrs)
    if (c.type == array.scalar_type()) d = &c;
  if (d == nullptr)
    fail(path, "array '" + name + "': dtype " + std::string(c10::toString(array.scalar_type())) +
                   " has no numpy equivalent here; convert it (e.g. to float32) before saving");
  const std::string descr = std::string(d->itemsize == 1 ? "|" : "<") + d->name;
  std::string header =
      "{'descr': '" + descr + "', 'fortran_order': False, 'shape': " + shape_repr(array.sizes()) + ", }";
  // numpy's _wrap_header: header + spaces + '\n', the whole prefix a multiple of 64 (a full 64 when already
  // aligned).
  int major = 1;
  size_t hlen = header.size() + 1;
  size_t pad = kAlign - (kMagicLen + 2 + 2 + hlen) % kAlign;
  if (hlen + pad > 0xffff) {
    major = 2;
    pad = kAlign - (kMagicLen + 2 + 4 + hlen) % kAlign;
  }
  header += std::string(pad, ' ') + "\n";
  const at::Tensor c = array.to(at::kCPU).contiguous();
  const size_t nbytes = static_cast<size_t>(c.numel()) * d->itemsize;

  std::string out(kMagic, kMagicLen);
  out.push_back(static_cast<char>(major));
  out.push_back(0);
  for (int i = 0; i < (major == 1 ? 2 : 4); ++i)
    out.push_back(static_cast<char>((header.size() >> (8 * i)) & 0xff));
  out.reserve(out.size() + header.size() + nbytes);
  out += header;
  out.append(static_cast<const char*>(c.data_ptr()), nbytes);
  return out;
}

}  // namespace pidistill
