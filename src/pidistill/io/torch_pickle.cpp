// torch.save zip reader: a small pickle virtual machine for the opcodes state dicts use, building tensors from
// the archive's data/<key> storage records. No Python and no torch::pickle_load (which rejects OrderedDict).
#include "pidistill/io/torch_pickle.h"

#include "pidistill/io/zip_archive.h"
#include "pidistill/util/error.h"
#include "pidistill/util/files.h"

#include <ATen/ATen.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <variant>

namespace pidistill {

namespace {

struct Value;
using ValuePtr = std::shared_ptr<Value>;

struct Global {
  std::string module, name;
  std::string full() const { return module + "." + name; }
};
struct Storage {  // a persistent-id reference to data/<key>
  std::string key;
  at::ScalarType dtype;
};
struct Mark {};
struct Tuple { std::vector<ValuePtr> items; };
struct List { std::vector<ValuePtr> items; };
struct Dict { std::vector<std::pair<ValuePtr, ValuePtr>> items; };  // insertion order, as Python keeps it
struct Opaque { std::string type; };  // an object we do not model (its contents are skipped)

// Why shared pointers: the memo and the stack share mutable lists and dicts (SETITEMS after BINPUT).
struct Value {
  std::variant<std::monostate, bool, int64_t, double, std::string, Tuple, List, Dict, Global, Storage, at::Tensor,
               Opaque, Mark>
      v;
};

template <class T>
ValuePtr make(T x) {
  auto p = std::make_shared<Value>();
  p->v = std::move(x);
  return p;
}

at::ScalarType storage_dtype(const std::string& name) {
  static const std::map<std::string, at::ScalarType> types = {
      {"DoubleStorage", at::kDouble}, {"FloatStorage", at::kFloat}, {"HalfStorage", at::kHalf},
      {"BFloat16Storage", at::kBFloat16}, {"LongStorage", at::kLong}, {"IntStorage", at::kInt},
      {"ShortStorage", at::kShort}, {"CharStorage", at::kChar}, {"ByteStorage", at::kByte},
      {"BoolStorage", at::kBool},
  };
  auto it = types.find(name);
  return it == types.end() ? at::ScalarType::Undefined : it->second;
}

class Unpickler {
 public:
  Unpickler(const std::string& path, const std::string& data, const ZipArchive& zip, const std::string& stem)
      : path_(path), data_(data), zip_(zip), stem_(stem) {}

  ValuePtr run() {
    while (true) {
      if (pos_ >= data_.size()) bad("ends without a STOP opcode (truncated)");
      op_pos_ = pos_;
      const unsigned char op = byte();
      switch (op) {
        case 0x80: byte(); break;  // PROTO n
        case 0x95: bytes(8); break;  // FRAME len: framing is only a read-ahead hint
        case '.': return pop();  // STOP
        case '(': marks_.push_back(stack_.size()); break;  // MARK
        case '0': pop(); break;  // POP
        case '1': pop_mark(); break;  // POP_MARK
        case '2': push(top()); break;  // DUP
        case 'N': push(make(std::monostate{})); break;
        case 0x88: push(make(true)); break;
        case 0x89: push(make(false)); break;
        case 'J': push(make(static_cast<int64_t>(static_cast<int32_t>(uint_le(4))))); break;  // BININT
        case 'K': push(make(static_cast<int64_t>(uint_le(1)))); break;  // BININT1
        case 'M': push(make(static_cast<int64_t>(uint_le(2)))); break;  // BININT2
        case 0x8a: push(make(long1(uint_le(1)))); break;  // LONG1
        case 'G': push(make(binfloat())); break;
        case 'X': push(make(bytes(uint_le(4)))); break;  // BINUNICODE
        case 0x8c: push(make(bytes(uint_le(1)))); break;  // SHORT_BINUNICODE
        case 0x8d: push(make(bytes(uint_le(8)))); break;  // BINUNICODE8
        case 'B': push(make(bytes(uint_le(4)))); break;  // BINBYTES (kept as a string)
        case 'C': push(make(bytes(uint_le(1)))); break;  // SHORT_BINBYTES
        case 'q': memo_put(uint_le(1)); break;  // BINPUT
        case 'r': memo_put(uint_le(4)); break;  // LONG_BINPUT
        case 0x94: memo_put(memo_.size()); break;  // MEMOIZE
        case 'h': memo_get(uint_le(1)); break;  // BINGET
        case 'j': memo_get(uint_le(4)); break;  // LONG_BINGET
        case '}': push(make(Dict{})); break;
        case ']': push(make(List{})); break;
        case ')': push(make(Tuple{})); break;
        case 'd': {  // DICT
          auto items = pop_mark();
          Dict d;
          for (size_t i = 0; i + 1 < items.size(); i += 2) d.items.emplace_back(items[i], items[i + 1]);
          push(make(std::move(d)));
          break;
        }
        case 'l': push(make(List{pop_mark()})); break;  // LIST
        case 't': push(make(Tuple{pop_mark()})); break;  // TUPLE
        case 0x85: case 0x86: case 0x87: {  // TUPLE1..3
          const size_t k = op - 0x84;
          if (stack_.size() < k + floor()) bad("tuple of " + std::to_string(k) + " needs more stack items");
          Tuple t{std::vector<ValuePtr>(stack_.end() - k, stack_.end())};
          stack_.resize(stack_.size() - k);
          push(make(std::move(t)));
          break;
        }
        case 's': {  // SETITEM
          ValuePtr v = pop(), k = pop();
          dict_set(top(), k, v);
          break;
        }
        case 'u': {  // SETITEMS
          auto items = pop_mark();
          for (size_t i = 0; i + 1 < items.size(); i += 2) dict_set(top(), items[i], items[i + 1]);
          break;
        }
        case 'a': {  // APPEND
          ValuePtr v = pop();
          list_of(top()).push_back(v);
          break;
        }
        case 'e': {  // APPENDS
          auto items = pop_mark();
          auto& l = list_of(top());
          l.insert(l.end(), items.begin(), items.end());
          break;
        }
        case 'c': {  // GLOBAL "module\nname\n"
          std::string module = line(), name = line();
          push(make(Global{module, name}));
          break;
        }
        case 0x93: {  // STACK_GLOBAL
          ValuePtr name = pop(), module = pop();
          push(make(Global{as_string(module, "STACK_GLOBAL module"), as_string(name, "STACK_GLOBAL name")}));
          break;
        }
        case 'R': {  // REDUCE
          ValuePtr args = pop(), callable = pop();
          push(call(callable, args));
          break;
        }
        case 0x81: {  // NEWOBJ cls(*args)
          ValuePtr args = pop(), cls = pop();
          push(call(cls, args));
          break;
        }
        case 'b': pop(); break;  // BUILD: object state (an OrderedDict's _metadata, ...) is not needed
        case 'Q': push(persistent_load(pop())); break;  // BINPERSID
        default: {
          char hex[8];
          std::snprintf(hex, sizeof(hex), "0x%02x", op);
          bad(std::string("unsupported pickle opcode ") + hex +
              " (this reader knows the subset torch.save state dicts use; convert the file to safetensors)");
        }
      }
    }
  }

 private:
  [[noreturn]] void bad(const std::string& what) const {
    fail(path_, "data.pkl byte " + std::to_string(op_pos_) + ": " + what);
  }

  unsigned char byte() {
    if (pos_ >= data_.size()) bad("truncated pickle");
    return static_cast<unsigned char>(data_[pos_++]);
  }
  std::string bytes(uint64_t n) {
    if (n > data_.size() - pos_) bad("truncated pickle: needs " + std::to_string(n) + " more bytes");
    std::string s = data_.substr(pos_, n);
    pos_ += n;
    return s;
  }
  uint64_t uint_le(int n) {
    std::string b = bytes(n);
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(b[i]);
    return v;
  }
  int64_t long1(uint64_t n) {  // little-endian two's complement of n bytes
    if (n > 8) bad("LONG1 of " + std::to_string(n) + " bytes does not fit in 64 bits");
    std::string b = bytes(n);
    uint64_t v = 0;
    for (int i = static_cast<int>(n) - 1; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(b[i]);
    if (n > 0 && n < 8 && (static_cast<unsigned char>(b[n - 1]) & 0x80)) v |= ~uint64_t{0} << (8 * n);
    return static_cast<int64_t>(v);
  }
  double binfloat() {  // big-endian IEEE double
    std::string b = bytes(8);
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<unsigned char>(b[i]);
    double d;
    std::memcpy(&d, &v, 8);
    return d;
  }
  std::string line() {
    size_t end = data_.find('\n', pos_);
    if (end == std::string::npos) bad("truncated GLOBAL");
    std::string s = data_.substr(pos_, end - pos_);
    pos_ = end + 1;
    return s;
  }

  size_t floor() const { return marks_.empty() ? 0 : marks_.back(); }
  void push(ValuePtr v) { stack_.push_back(std::move(v)); }
  ValuePtr pop() {
    if (stack_.size() <= floor()) bad("pop from an empty stack (damaged pickle)");
    ValuePtr v = stack_.back();
    stack_.pop_back();
    return v;
  }
  ValuePtr& top() {
    if (stack_.size() <= floor()) bad("empty stack (damaged pickle)");
    return stack_.back();
  }
  std::vector<ValuePtr> pop_mark() {
    if (marks_.empty()) bad("no MARK on the stack (damaged pickle)");
    size_t m = marks_.back();
    marks_.pop_back();
    std::vector<ValuePtr> items(stack_.begin() + m, stack_.end());
    stack_.resize(m);
    return items;
  }
  void memo_put(uint64_t i) { memo_[i] = top(); }
  void memo_get(uint64_t i) {
    auto it = memo_.find(i);
    if (it == memo_.end()) bad("memo key " + std::to_string(i) + " was never stored (damaged pickle)");
    push(it->second);
  }

  std::string as_string(const ValuePtr& v, const std::string& what) {
    if (auto s = std::get_if<std::string>(&v->v)) return *s;
    bad(what + " must be a string");
  }
  int64_t as_int(const ValuePtr& v, const std::string& what) {
    if (auto i = std::get_if<int64_t>(&v->v)) return *i;
    bad(what + " must be an integer");
  }
  std::vector<int64_t> as_ints(const ValuePtr& v, const std::string& what) {
    auto t = std::get_if<Tuple>(&v->v);
    if (!t) bad(what + " must be a tuple of integers");
    std::vector<int64_t> out;
    for (const auto& x : t->items) out.push_back(as_int(x, what));
    return out;
  }
  std::vector<ValuePtr>& list_of(ValuePtr& v) {
    if (auto l = std::get_if<List>(&v->v)) return l->items;
    bad("APPEND target is not a list");
  }
  void dict_set(ValuePtr& d, const ValuePtr& k, const ValuePtr& v) {
    auto dict = std::get_if<Dict>(&d->v);
    if (!dict) {
      if (std::holds_alternative<Opaque>(d->v)) return;  // items of an unmodelled object: skipped
      bad("SETITEM target is not a dict");
    }
    if (auto ks = std::get_if<std::string>(&k->v)) {
      for (auto& kv : dict->items) {
        auto s = std::get_if<std::string>(&kv.first->v);
        if (s && *s == *ks) {
          kv.second = v;
          return;
        }
      }
    }
    dict->items.emplace_back(k, v);
  }

  // ('storage', storage_type, key, location, numel) -> the storage's dtype and key; the bytes load lazily.
  ValuePtr persistent_load(const ValuePtr& pid) {
    auto t = std::get_if<Tuple>(&pid->v);
    if (!t || t->items.size() < 3 || as_string(t->items[0], "persistent id tag") != "storage")
      bad("persistent id is not a ('storage', type, key, location, numel) tuple");
    auto g = std::get_if<Global>(&t->items[1]->v);
    if (!g) bad("persistent id storage type is not a class");
    at::ScalarType dtype = storage_dtype(g->name);
    if (dtype == at::ScalarType::Undefined) bad("unsupported storage type " + g->full());
    return make(Storage{as_string(t->items[2], "storage key"), dtype});
  }

  // The storage's bytes as a flat tensor, loaded once per key (tensors may share a storage).
  at::Tensor storage_tensor(const Storage& s) {
    auto it = storages_.find(s.key);
    if (it != storages_.end()) return it->second;
    const std::string name = stem_ + "/data/" + s.key;
    const ZipEntry* e = zip_.find(name);
    if (!e) fail(path_, "data.pkl references storage '" + s.key + "' but the archive has no record '" + name +
                            "' (incomplete or damaged file)");
    std::string raw = zip_.read(*e);
    const size_t item = at::elementSize(s.dtype);
    if (raw.size() % item != 0)
      fail(path_, "record '" + name + "' holds " + std::to_string(raw.size()) + " bytes, not a whole number of " +
                      std::string(c10::toString(s.dtype)) + " items");
    at::Tensor t = at::empty({static_cast<int64_t>(raw.size() / item)}, at::TensorOptions().dtype(s.dtype));
    if (!raw.empty()) std::memcpy(t.data_ptr(), raw.data(), raw.size());
    storages_[s.key] = t;
    return t;
  }

  // _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
  ValuePtr rebuild_tensor(const std::vector<ValuePtr>& args) {
    if (args.size() < 4) bad("_rebuild_tensor_v2 needs at least 4 arguments");
    auto s = std::get_if<Storage>(&args[0]->v);
    if (!s) bad("_rebuild_tensor_v2's first argument is not a storage");
    at::Tensor flat = storage_tensor(*s);
    const int64_t offset = as_int(args[1], "storage offset");
    const auto size = as_ints(args[2], "tensor size"), stride = as_ints(args[3], "tensor stride");
    if (size.size() != stride.size()) bad("tensor size and stride differ in length");
    // The view must stay inside the storage: as_strided does not check it.
    int64_t last = offset;
    bool empty = false;
    for (size_t i = 0; i < size.size(); ++i) {
      if (size[i] < 0 || stride[i] < 0) bad("negative tensor size or stride");
      if (size[i] == 0) empty = true;
      last += (size[i] - 1) * stride[i];
    }
    if (offset < 0 || (!empty && last >= flat.numel()))
      bad("tensor view (offset " + std::to_string(offset) + ", last element " + std::to_string(last) +
          ") goes beyond storage '" + s->key + "' of " + std::to_string(flat.numel()) + " items");
    if (empty) return make(at::empty(size, flat.options()));
    return make(flat.as_strided(size, stride, offset).clone(at::MemoryFormat::Contiguous));
  }

  ValuePtr call(const ValuePtr& callable, const ValuePtr& args_value) {
    auto g = std::get_if<Global>(&callable->v);
    auto args_tuple = std::get_if<Tuple>(&args_value->v);
    if (!g || !args_tuple) return make(Opaque{"(call)"});
    const auto& args = args_tuple->items;
    const std::string f = g->full();
    if (f == "collections.OrderedDict" || f == "builtins.dict") return make(Dict{});
    if (f == "torch._utils._rebuild_tensor_v2") return rebuild_tensor(args);
    // C++ torch::pickle_save tags typed containers: restore_type_tag(value, "List[Tensor]") is the value.
    if (f == "torch.jit._pickle.restore_type_tag" && !args.empty()) return args[0];
    if (f == "torch._utils._rebuild_parameter" || f == "torch._utils._rebuild_parameter_with_state") {
      if (args.empty() || !std::holds_alternative<at::Tensor>(args[0]->v)) bad(f + "'s first argument is not a tensor");
      return args[0];
    }
    return make(Opaque{f});  // e.g. argparse.Namespace in a training checkpoint: not a tensor, skipped
  }

  const std::string& path_;
  const std::string& data_;
  const ZipArchive& zip_;
  const std::string stem_;
  size_t pos_ = 0, op_pos_ = 0;
  std::vector<ValuePtr> stack_;
  std::vector<size_t> marks_;
  std::map<uint64_t, ValuePtr> memo_;
  std::map<std::string, at::Tensor> storages_;
};

std::string key_text(const ValuePtr& k) {
  if (auto s = std::get_if<std::string>(&k->v)) return *s;
  if (auto i = std::get_if<int64_t>(&k->v)) return std::to_string(*i);
  return "";
}

// Dicts (nested too) of tensors -> "a.b.c" names in insertion order; everything else is skipped.
void flatten(const ValuePtr& v, const std::string& prefix, NamedTensors& out) {
  if (auto t = std::get_if<at::Tensor>(&v->v)) {
    out.emplace_back(prefix, *t);
  } else if (auto d = std::get_if<Dict>(&v->v)) {
    for (const auto& kv : d->items) {
      const std::string k = key_text(kv.first);
      if (k.empty()) continue;
      flatten(kv.second, prefix.empty() ? k : prefix + "." + k, out);
    }
  }
}

}  // namespace

bool is_zip_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  char sig[4] = {};
  if (!in.read(sig, 4)) return false;
  return sig[0] == 'P' && sig[1] == 'K' && ((sig[2] == 3 && sig[3] == 4) || (sig[2] == 5 && sig[3] == 6));
}

NamedTensors read_torch_checkpoint(const std::string& path) {
  std::string bytes = read_file(path);
  if (bytes.size() < 4 || bytes.compare(0, 2, "PK") != 0)
    fail(path, "not a zip torch.save file (legacy torch.save format or not a checkpoint); re-save it with "
               "torch.save in torch >= 1.6, or convert it to safetensors");
  ZipArchive zip(path, std::move(bytes));
  // The top folder is named after the file that was saved; find it through data.pkl.
  const ZipEntry* pkl = nullptr;
  for (const auto& e : zip.entries()) {
    const std::string suffix = "/data.pkl";
    if (e.name.size() > suffix.size() && e.name.compare(e.name.size() - suffix.size(), suffix.size(), suffix) == 0 &&
        e.name.find('/') == e.name.size() - suffix.size()) {
      pkl = &e;
      break;
    }
  }
  if (!pkl) fail(path, "zip has no '<folder>/data.pkl' record: not a torch.save checkpoint");
  const std::string stem = pkl->name.substr(0, pkl->name.size() - 9);
  if (const ZipEntry* order = zip.find(stem + "/byteorder")) {
    if (zip.read(*order) != "little")
      fail(path, "tensors are stored big-endian; re-save the checkpoint on a little-endian machine");
  }
  const std::string data = zip.read(*pkl);
  ValuePtr root = Unpickler(path, data, zip, stem).run();
  NamedTensors out;
  // A top-level list or tuple of tensors (e.g. piq's lpips_weights.pt) reads as names "0", "1", ...
  const std::vector<ValuePtr>* seq = nullptr;
  if (auto l = std::get_if<List>(&root->v)) seq = &l->items;
  if (auto t = std::get_if<Tuple>(&root->v)) seq = &t->items;
  if (seq) {
    for (size_t i = 0; i < seq->size(); ++i) flatten((*seq)[i], std::to_string(i), out);
    return out;
  }
  if (!std::holds_alternative<Dict>(root->v) && !std::holds_alternative<at::Tensor>(root->v))
    fail(path, "data.pkl holds no dict of tensors (expected torch.save(state_dict) or a dict)");
  flatten(root, "", out);
  return out;
}

}  // namespace pidistill
