// The values our restricted unpickler builds (plain Python data, tensors, inert objects), owned by one arena.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <deque>
#include <string>
#include <unordered_map>
#include <vector>

namespace pidistill {

// One Python value. Children are plain pointers into the arena that owns every value, so a deeply nested or
// cyclic pickle is destroyed without recursion and without leaks.
struct PyValue {
  enum class Kind {
    None,
    Bool,
    Int,
    Float,
    Str,
    Bytes,
    Tuple,
    List,
    Set,
    Dict,
    Global,
    Object,
    Storage,
    Tensor
  };
  Kind kind = Kind::None;
  bool b = false;  // Bool
  int64_t i = 0;   // Int (when `s` is empty; a wider integer keeps its little-endian bytes in `s`)
  double f = 0;    // Float
  std::string s;   // Str (UTF-8), Bytes, Global ("module.name"), Object (class name), Storage (key)
  std::vector<PyValue*> items;  // Tuple, List, Set; Dict: key, value, key, value, ... in insertion order
  std::unordered_map<std::string, size_t> index;  // Dict: string key -> position of its key in `items`
  PyValue* state =
      nullptr;              // Object: its __dict__ (BUILD, or persistence meta['state']); Tensor: its storage
  bool persistent = false;  // Object: a torch_utils.persistence object; `s` is meta['class_name']
  c10::ScalarType dtype = c10::ScalarType::Undefined;  // Storage
  at::Tensor tensor;   // Storage: the flat data once read; Tensor: the tensor once materialized
  int64_t offset = 0;  // Tensor: storage offset, in items
  std::vector<int64_t> sizes, strides;  // Tensor: the view on its storage

  bool is(Kind k) const { return kind == k; }
  // Dict: the value under a string key, or nullptr.
  const PyValue* get(const std::string& key) const;
  size_t dict_size() const { return items.size() / 2; }
};

const char* kind_name(PyValue::Kind kind);

class PyArena {
 public:
  PyValue* make(PyValue::Kind kind) {
    values_.emplace_back();
    values_.back().kind = kind;
    return &values_.back();
  }
  size_t size() const { return values_.size(); }

 private:
  std::deque<PyValue> values_;  // Why a deque: pointers to its elements stay valid as it grows.
};

}  // namespace pidistill
