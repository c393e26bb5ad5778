// torch.save zip, legacy torch.save and plain pickles through the restricted unpickler (pickle_machine.h);
// zip storages come from the archive's data/<key> records. No Python and no torch::pickle_load.
#include "pidistill/io/torch_pickle.h"

#include "pidistill/io/legacy_torch_save.h"
#include "pidistill/io/pickle_machine.h"
#include "pidistill/io/zip_archive.h"
#include "pidistill/util/error.h"
#include "pidistill/util/files.h"

#include <ATen/ATen.h>

#include <sys/stat.h>

#include <cstring>
#include <fstream>
#include <map>

namespace pidistill {

namespace {

using Kind = PyValue::Kind;

std::string key_text(const PyValue* k) {
  if (k->is(Kind::Str)) return k->s;
  if (k->is(Kind::Int) && k->s.empty()) return std::to_string(k->i);
  return "";
}

void flatten(const PyValue* v, const std::string& prefix, NamedTensors& out, int depth,
             const std::string& where) {
  if (depth > kMaxPickleDepth)
    fail(where, "dicts nested deeper than " + std::to_string(kMaxPickleDepth) + " levels at '" +
                    prefix.substr(0, 200) + "...' (damaged or hostile file)");
  if (v->is(Kind::Tensor)) {
    out.emplace_back(prefix, v->tensor);
  } else if (v->is(Kind::Dict)) {
    for (size_t i = 0; i + 1 < v->items.size(); i += 2) {
      const std::string k = key_text(v->items[i]);
      if (k.empty()) continue;
      flatten(v->items[i + 1], prefix.empty() ? k : prefix + "." + k, out, depth + 1, where);
    }
  }
}

PickleOptions options_for(const std::string& path, const std::string& label, PyArena& arena) {
  PickleOptions o;
  o.path = path;
  o.label = label;
  o.load_from_bytes = [&arena, path](const std::string& b, const std::string& where) {
    return read_legacy_torch_save(arena, path, b, "storage at " + where, /*nested=*/true);
  };
  return o;
}

const PyValue* read_zip(const std::string& path, std::string bytes, PyArena& arena) {
  ZipArchive zip(path, std::move(bytes));
  // The top folder is named after the file that was saved; find it through data.pkl.
  const ZipEntry* pkl = nullptr;
  const std::string suffix = "/data.pkl";
  for (const auto& e : zip.entries()) {
    if (e.name.size() > suffix.size() &&
        e.name.compare(e.name.size() - suffix.size(), suffix.size(), suffix) == 0 &&
        e.name.find('/') == e.name.size() - suffix.size()) {
      pkl = &e;
      break;
    }
  }
  if (!pkl) fail(path, "zip has no '<folder>/data.pkl' record: not a torch.save checkpoint");
  const std::string stem = pkl->name.substr(0, pkl->name.size() - suffix.size());
  if (const ZipEntry* order = zip.find(stem + "/byteorder")) {
    if (zip.read(*order) != "little")
      fail(path, "tensors are stored big-endian; re-save the checkpoint on a little-endian machine");
  }
  const std::string data = zip.read(*pkl);
  const PickleOptions options = options_for(path, "data.pkl", arena);
  PickleResult r = run_pickle(arena, data, 0, options);
  // Each storage once per key (tensors may share one): the record's bytes as a flat tensor.
  std::map<std::string, at::Tensor> loaded;
  for (PyValue* s : r.storages) {
    auto it = loaded.find(s->s);
    if (it == loaded.end()) {
      const std::string name = stem + "/data/" + s->s;
      const ZipEntry* e = zip.find(name);
      if (!e)
        fail(path, "data.pkl references storage '" + s->s + "' but the archive has no record '" + name +
                       "' (incomplete or damaged file)");
      std::string raw = zip.read(*e);
      const size_t item = at::elementSize(s->dtype);
      if (raw.size() % item != 0)
        fail(path, "record '" + name + "' holds " + std::to_string(raw.size()) +
                       " bytes, not a whole number of " + std::string(c10::toString(s->dtype)) + " items");
      at::Tensor t =
          at::empty({static_cast<int64_t>(raw.size() / item)}, at::TensorOptions().dtype(s->dtype));
      if (!raw.empty()) std::memcpy(t.data_ptr(), raw.data(), raw.size());
      it = loaded.emplace(s->s, t).first;
    }
    if (it->second.scalar_type() != s->dtype) fail(path, "storage '" + s->s + "' is used with two dtypes");
    s->tensor = it->second;
  }
  materialize_tensors(r.tensors, path + ": data.pkl");
  return r.root;
}

}  // namespace

bool is_zip_file(const std::string& path) {
  // Why stat first: opening a FIFO with ifstream blocks until a writer comes (inspect FIFO hung); anything but a
  // regular file is left to read_file, which refuses it by name.
  struct stat st;
  if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return false;
  std::ifstream in(path, std::ios::binary);
  char sig[4] = {};
  if (!in.read(sig, 4)) return false;
  return sig[0] == 'P' && sig[1] == 'K' && ((sig[2] == 3 && sig[3] == 4) || (sig[2] == 5 && sig[3] == 6));
}

bool is_torch_file(const std::string& path) {
  if (is_zip_file(path)) return true;
  struct stat st;
  if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return false;
  std::ifstream in(path, std::ios::binary);
  char head[2] = {};
  return in.read(head, 2) && static_cast<unsigned char>(head[0]) == 0x80 && head[1] >= 2 && head[1] <= 5;
}

TorchPickle read_torch_pickle(const std::string& path) {
  std::string bytes = read_file(path);
  TorchPickle out;
  out.path = path;
  out.arena = std::make_shared<PyArena>();
  if (bytes.size() >= 4 && bytes.compare(0, 2, "PK") == 0) {
    out.format = "zip torch.save";
    out.root = read_zip(path, std::move(bytes), *out.arena);
  } else if (is_legacy_torch_save(bytes)) {
    out.format = "legacy torch.save";
    try {
      out.root = read_legacy_torch_save(*out.arena, path, bytes, "legacy torch.save", /*nested=*/false);
    } catch (const Error& e) {
      throw Error(
          std::string(e.what()) +
          " (a legacy, not a zip torch.save file; hint: re-save it with torch.save in torch >= 1.6, or "
          "convert it to safetensors)");
    }
  } else if (bytes.size() >= 2 && static_cast<unsigned char>(bytes[0]) == 0x80 && bytes[1] >= 2 &&
             bytes[1] <= 5) {
    out.format = "pickle";
    const PickleOptions options = options_for(path, "pickle", *out.arena);
    PickleResult r = run_pickle(*out.arena, bytes, 0, options);
    if (!r.storages.empty())
      fail(path, "pickle references storage '" + r.storages.front()->s +
                     "' outside a torch.save file (no data for it)");
    materialize_tensors(r.tensors, path + ": pickle");
    out.root = r.root;
  } else {
    fail(path,
         "not a zip torch.save file, a legacy torch.save or a pickle; re-save it with torch.save in torch >= "
         "1.6, or convert it to safetensors");
  }
  return out;
}

NamedTensors flatten_tensors(const PyValue* root, const std::string& where) {
  NamedTensors out;
  if (root->is(Kind::List) || root->is(Kind::Tuple)) {
    for (size_t i = 0; i < root->items.size(); ++i) flatten(root->items[i], std::to_string(i), out, 1, where);
    return out;
  }
  if (!root->is(Kind::Dict) && !root->is(Kind::Tensor))
    fail(where, std::string("holds a ") + kind_name(root->kind) +
                    ", no dict of tensors (expected torch.save(state_dict) or a dict)");
  flatten(root, "", out, 0, where);
  return out;
}

NamedTensors read_torch_checkpoint(const std::string& path) {
  const TorchPickle p = read_torch_pickle(path);
  return flatten_tensors(p.root, path);
}

}  // namespace pidistill
