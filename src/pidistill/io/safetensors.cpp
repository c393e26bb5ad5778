// safetensors reader (fully validated) and writer (standard layout, atomic).
// Layout: u64 little-endian header length N, N bytes of JSON, then raw little-endian C-contiguous data.
#include "pidistill/io/safetensors.h"

#include "pidistill/util/error.h"
#include "pidistill/util/files.h"
#include "pidistill/util/json_depth.h"

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <set>

namespace pidistill {

namespace {

using ordered_json = nlohmann::ordered_json;

// Why a cap: a corrupt length must not make us allocate gigabytes for a "header" (the reference reader caps
// at 100 MB).
constexpr uint64_t kMaxHeaderBytes = 100ull << 20;
constexpr int kMaxHeaderDepth = 64;

struct DtypeName {
  const char* name;
  at::ScalarType type;
};
constexpr DtypeName kDtypes[] = {
    {"F64", at::kDouble}, {"F32", at::kFloat}, {"F16", at::kHalf},  {"BF16", at::kBFloat16},
    {"I64", at::kLong},   {"I32", at::kInt},   {"I16", at::kShort}, {"I8", at::kChar},
    {"U8", at::kByte},    {"BOOL", at::kBool},
};

at::ScalarType dtype_from_name(const std::string& path, const std::string& tensor, const std::string& name) {
  for (const auto& d : kDtypes)
    if (name == d.name) return d.type;
  fail(path, "tensor '" + tensor + "': unknown dtype '" + name +
                 "' (supported: F64 F32 F16 BF16 I64 I32 I16 I8 U8 BOOL)");
}

const char* dtype_name(const std::string& path, const std::string& tensor, at::ScalarType type) {
  for (const auto& d : kDtypes)
    if (type == d.type) return d.name;
  fail(path, "tensor '" + tensor + "': dtype " + std::string(c10::toString(type)) +
                 " cannot be stored in safetensors");
}

uint64_t read_u64_le(const char* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

// A JSON value as an error message shows it: scalars as written, containers by kind only, because dump()
// recurses and a hostile header can nest arrays deep enough to overflow the stack.
std::string describe(const ordered_json& v) {
  if (v.is_primitive()) return v.dump();
  return std::string("a JSON ") + v.type_name() + " of " + std::to_string(v.size()) + " entries";
}

// A JSON value that must be a non-negative integer; `what` names it in the error.
uint64_t as_size(const std::string& path, const std::string& what, const ordered_json& v) {
  if (!v.is_number_unsigned() && !(v.is_number_integer() && v.get<int64_t>() >= 0))
    fail(path, what + " must be a non-negative integer, got " + describe(v));
  return v.get<uint64_t>();
}

struct Entry {
  std::string name;
  at::ScalarType type;
  std::vector<int64_t> shape;
  uint64_t begin, end;  // relative to the start of the data section
  size_t header_index;  // tie-break for zero-sized tensors sharing an offset
};

Entry parse_entry(const std::string& path, const std::string& name, const ordered_json& v, size_t index) {
  const std::string where = "tensor '" + name + "'";
  if (!v.is_object()) fail(path, where + ": header entry must be an object with dtype, shape, data_offsets");
  for (const char* key : {"dtype", "shape", "data_offsets"})
    if (!v.contains(key)) fail(path, where + ": header entry lacks '" + key + "'");
  if (!v["dtype"].is_string()) fail(path, where + ": dtype must be a string");
  Entry e;
  e.name = name;
  e.header_index = index;
  e.type = dtype_from_name(path, name, v["dtype"].get<std::string>());
  if (!v["shape"].is_array()) fail(path, where + ": shape must be an array");
  // Why the overflow guard: a hostile shape could wrap the product around to match the span.
  uint64_t numel = 1;
  bool overflow = false;
  for (const auto& d : v["shape"]) {
    uint64_t n = as_size(path, where + " shape entry", d);
    if (n != 0 && numel > UINT64_MAX / n) overflow = true;
    numel *= n;
    e.shape.push_back(static_cast<int64_t>(n));
  }
  const auto& off = v["data_offsets"];
  if (!off.is_array() || off.size() != 2) fail(path, where + ": data_offsets must be [begin, end]");
  e.begin = as_size(path, where + " data_offsets[0]", off[0]);
  e.end = as_size(path, where + " data_offsets[1]", off[1]);
  if (e.end < e.begin)
    fail(path, where + ": data_offsets [" + std::to_string(e.begin) + ", " + std::to_string(e.end) +
                   "] end before begin");
  uint64_t itemsize = at::elementSize(e.type);
  if (overflow || numel > UINT64_MAX / itemsize || numel * itemsize != e.end - e.begin)
    fail(path, where + ": shape " + v["shape"].dump() + " x " + std::to_string(itemsize) +
                   " bytes does not match " + "data_offsets span of " + std::to_string(e.end - e.begin) +
                   " bytes");
  return e;
}

}  // namespace

bool TensorFile::has(const std::string& name) const {
  for (const auto& kv : tensors)
    if (kv.first == name) return true;
  return false;
}

const at::Tensor& TensorFile::get(const std::string& name) const {
  for (const auto& kv : tensors)
    if (kv.first == name) return kv.second;
  fail(path, "no tensor '" + name + "'");
}

std::string TensorFile::meta(const std::string& key, const std::string& fallback) const {
  auto it = metadata.find(key);
  return it == metadata.end() ? fallback : it->second;
}

TensorFile read_safetensors(const std::string& path) {
  const std::string bytes = read_file(path);
  const uint64_t file_size = bytes.size();
  if (file_size < 8)
    fail(path, "truncated: " + std::to_string(file_size) +
                   " bytes, too short for the 8-byte header length (not a safetensors file?)");
  const uint64_t header_len = read_u64_le(bytes.data());
  if (header_len > file_size - 8)
    fail(path, "header length " + std::to_string(header_len) + " at byte 0 goes beyond the file size " +
                   std::to_string(file_size) + " (truncated or not a safetensors file)");
  if (header_len > kMaxHeaderBytes)
    fail(path, "header length " + std::to_string(header_len) + " is implausibly large");

  // A header is 3 levels deep (entries, their shapes); real files never come near the limit.
  check_json_depth(bytes.substr(8, header_len), kMaxHeaderDepth, path + ": JSON header");
  ordered_json header;
  try {
    header =
        ordered_json::parse(bytes.begin() + 8, bytes.begin() + 8 + static_cast<std::ptrdiff_t>(header_len));
  } catch (const nlohmann::json::exception& e) {
    fail(path,
         std::string("invalid JSON header (bytes 8..") + std::to_string(8 + header_len) + "): " + e.what());
  }
  if (!header.is_object()) fail(path, "JSON header must be an object mapping tensor names to entries");

  TensorFile file;
  file.path = path;
  std::vector<Entry> entries;
  for (const auto& item : header.items()) {
    if (item.key() == "__metadata__") {
      if (!item.value().is_object()) fail(path, "__metadata__ must be an object of strings");
      for (const auto& m : item.value().items()) {
        if (!m.value().is_string()) fail(path, "__metadata__ value of '" + m.key() + "' must be a string");
        file.metadata[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    entries.push_back(parse_entry(path, item.key(), item.value(), entries.size()));
  }

  // File order is data order; checking neighbours in that order finds every overlap.
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.header_index < b.header_index;
  });
  const uint64_t data_start = 8 + header_len;
  const uint64_t data_size = file_size - data_start;
  uint64_t prev_end = 0;
  std::string prev_name;
  for (const auto& e : entries) {
    if (e.end > data_size)
      fail(path, "tensor '" + e.name + "': data_offsets [" + std::to_string(e.begin) + ", " +
                     std::to_string(e.end) + "] go beyond the data section of " + std::to_string(data_size) +
                     " bytes (truncated file?)");
    if (e.begin < prev_end)
      fail(path, "tensor '" + e.name + "': data_offsets [" + std::to_string(e.begin) + ", " +
                     std::to_string(e.end) + "] overlap tensor '" + prev_name + "'");
    if (e.end > e.begin) {
      prev_end = e.end;
      prev_name = e.name;
    }
    at::Tensor t = at::empty(e.shape, at::TensorOptions().dtype(e.type));  // CPU, contiguous
    if (e.end > e.begin) std::memcpy(t.data_ptr(), bytes.data() + data_start + e.begin, e.end - e.begin);
    file.tensors.emplace_back(e.name, std::move(t));
  }
  return file;
}

void write_safetensors(const std::string& path, const NamedTensors& tensors,
                       const std::map<std::string, std::string>& metadata) {
  ordered_json header = ordered_json::object();
  if (!metadata.empty()) {
    ordered_json meta = ordered_json::object();
    for (const auto& kv : metadata) meta[kv.first] = kv.second;
    header["__metadata__"] = meta;
  }
  std::set<std::string> seen;
  uint64_t offset = 0;
  for (const auto& [name, tensor] : tensors) {
    if (name == "__metadata__") fail(path, "'__metadata__' is reserved and cannot name a tensor");
    if (!seen.insert(name).second) fail(path, "tensor '" + name + "' appears twice");
    if (!tensor.defined()) fail(path, "tensor '" + name + "' is undefined");
    const char* dtype = dtype_name(path, name, tensor.scalar_type());
    uint64_t nbytes = static_cast<uint64_t>(tensor.numel()) * tensor.element_size();
    header[name] = {{"dtype", dtype}, {"shape", tensor.sizes().vec()}, {"data_offsets", {offset, offset + nbytes}}};
    offset += nbytes;
  }
  std::string json = header.dump();
  // Why pad to 8: keeps every tensor 8-byte aligned when the file is memory-mapped, as the format recommends.
  json.append((8 - json.size() % 8) % 8, ' ');
  char length[8];
  const uint64_t n = json.size();
  for (int i = 0; i < 8; ++i) length[i] = static_cast<char>((n >> (8 * i)) & 0xff);

  // Why streamed: a checkpoint (student, 3 EMAs, 2 RAdam moments) is ~1.3 GB for the CIFAR-10 network; the file
  // is never assembled in memory, and at most one tensor at a time is copied (when on a GPU or not contiguous).
  write_file_atomic(path, [&](const WriteBytes& write) {
    write(length, sizeof length);
    write(json.data(), json.size());
    for (const auto& [name, tensor] : tensors) {
      at::Tensor t = tensor.detach().to(at::kCPU).contiguous();  // no copy when already a contiguous CPU tensor
      write(t.data_ptr(), static_cast<size_t>(t.numel()) * t.element_size());
    }
  });
}

}  // namespace pidistill
