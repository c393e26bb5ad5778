// A restricted pickle virtual machine: plain data, torch tensors and an explicit allow-list of globals.
// Nothing in a pickle is ever executed; any global outside the allow-list is an Error naming it.
#pragma once
#include "pidistill/io/pickle_value.h"

#include <functional>
#include <string>
#include <vector>

namespace pidistill {

struct PickleOptions {
  std::string path;   // the file, first in every error
  std::string label;  // which pickle in the file, e.g. "data.pkl": errors read "PATH: LABEL byte N: ..."
  // torch.storage._load_from_bytes(b): a complete legacy torch.save of one storage, parsed by the caller.
  // Empty: the global is refused (inside such a storage, so that they cannot nest).
  std::function<PyValue*(const std::string& bytes, const std::string& label)> load_from_bytes;
};

struct PickleResult {
  PyValue* root = nullptr;
  size_t end = 0;                  // the offset just past the STOP opcode
  std::vector<PyValue*> storages;  // every ('storage', ...) persistent id, data not yet read
  std::vector<PyValue*> tensors;   // every _rebuild_tensor_v2, not yet materialized
};

// Runs the pickle that starts at data[start]. Errors name options.path, options.label and the byte offset.
PickleResult run_pickle(PyArena& arena, const std::string& data, size_t start, const PickleOptions& options);

// Builds each tensor from its storage's data (views checked to lie inside the storage). `where` names errors.
void materialize_tensors(const std::vector<PyValue*>& tensors, const std::string& where);

// The allowed globals, "module.name", for documentation and tests.
const std::vector<std::string>& allowed_pickle_globals();

// Python's element size of a storage class name (FloatStorage, ...); Undefined for an unknown one.
c10::ScalarType storage_dtype(const std::string& class_name);

// Nesting limit of every walk over a value tree (state dicts, module trees, JSON): deeper is an Error.
constexpr int kMaxPickleDepth = 100;

}  // namespace pidistill
