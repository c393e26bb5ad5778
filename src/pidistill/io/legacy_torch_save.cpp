// Legacy torch.save: five pickles and the storages' raw bytes, every count checked against the bytes there.
#include "pidistill/io/legacy_torch_save.h"

#include "pidistill/io/pickle_machine.h"
#include "pidistill/util/error.h"

#include <ATen/ATen.h>

#include <cstring>
#include <map>

namespace pidistill {

namespace {

// torch/serialization.py MAGIC_NUMBER = 0x1950a86a20f9469cfc6c, as pickle's LONG1 writes it (little-endian).
const std::string kMagic("\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19", 10);
constexpr int64_t kProtocolVersion = 1001;

}  // namespace

bool is_legacy_torch_save(const std::string& bytes) {
  // PROTO 2, LONG1 10, the magic, STOP: how every torch.save (pickle protocol 2) starts.
  return bytes.size() >= 15 && bytes.compare(0, 15, std::string("\x80\x02\x8a\x0a", 4) + kMagic + ".") == 0;
}

PyValue* read_legacy_torch_save(PyArena& arena, const std::string& path, const std::string& bytes,
                                const std::string& label, bool nested) {
  auto bad = [&](size_t at, const std::string& what) {
    fail(path, label + " byte " + std::to_string(at) + ": " + what);
  };
  PickleOptions options;
  options.path = path;
  if (!nested) {
    options.load_from_bytes = [&arena, &path](const std::string& b, const std::string& where) {
      return read_legacy_torch_save(arena, path, b, "storage at " + where, /*nested=*/true);
    };
  }
  auto run = [&](size_t at, const std::string& what) {
    options.label = label + " (" + what + ")";
    return run_pickle(arena, bytes, at, options);
  };
  PickleResult magic = run(0, "magic number");
  if (!magic.root->is(PyValue::Kind::Int) || magic.root->s != kMagic)
    bad(0, "wrong magic number: not a legacy torch.save");
  PickleResult version = run(magic.end, "protocol version");
  if (!version.root->is(PyValue::Kind::Int) || version.root->i != kProtocolVersion)
    bad(magic.end, "protocol version is not " + std::to_string(kProtocolVersion));
  PickleResult info = run(version.end, "sys info");
  const PyValue* little = info.root->get("little_endian");
  if (!little || !little->is(PyValue::Kind::Bool) || !little->b)
    bad(version.end, "not written little-endian (re-save it on a little-endian machine)");
  PickleResult object = run(info.end, "object");
  if (nested) {
    if (!object.tensors.empty()) bad(info.end, "a storage's bytes hold tensors");
    if (!object.root->is(PyValue::Kind::Storage)) bad(info.end, "the bytes hold no storage");
  }
  PickleResult keys = run(object.end, "storage keys");
  if (!keys.root->is(PyValue::Kind::List)) bad(object.end, "storage keys are not a list");

  std::map<std::string, std::vector<PyValue*>> by_key;
  for (PyValue* s : object.storages) by_key[s->s].push_back(s);
  size_t pos = keys.end;
  for (const PyValue* k : keys.root->items) {
    if (!k->is(PyValue::Kind::Str)) bad(pos, "storage key is not a string");
    auto it = by_key.find(k->s);
    if (it == by_key.end()) bad(pos, "storage '" + k->s + "' is listed but no tensor uses it");
    const c10::ScalarType dtype = it->second.front()->dtype;
    const size_t item = at::elementSize(dtype);
    if (bytes.size() - pos < 8) bad(pos, "truncated: storage '" + k->s + "' has no item count");
    uint64_t count = 0;
    for (int i = 7; i >= 0; --i) count = (count << 8) | static_cast<unsigned char>(bytes[pos + i]);
    pos += 8;
    // Why: the claimed count is checked against what remains before anything is allocated.
    if (count > (bytes.size() - pos) / item)
      bad(pos - 8, "truncated storage '" + k->s + "': claims " + std::to_string(count) + " items of " +
                       std::to_string(item) + " bytes, " + std::to_string(bytes.size() - pos) +
                       " bytes remain");
    at::Tensor data = at::empty({static_cast<int64_t>(count)}, at::TensorOptions().dtype(dtype));
    if (count) std::memcpy(data.data_ptr(), bytes.data() + pos, count * item);
    pos += count * item;
    for (PyValue* s : it->second) {
      if (s->dtype != dtype) bad(pos, "storage '" + k->s + "' is used with two dtypes");
      s->tensor = data;
    }
  }
  if (nested && pos != bytes.size())
    bad(pos, std::to_string(bytes.size() - pos) + " bytes after the last storage (damaged storage)");
  materialize_tensors(object.tensors, path + ": " + label);
  return object.root;
}

}  // namespace pidistill
