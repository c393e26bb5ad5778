// The restricted unpickler: the opcodes of pickle protocols 2-5 that torch.save and EDM's persistence use,
// and an allow-list of globals, each replaced by a small C++ function that builds data (never Python code).
#include "pidistill/io/pickle_machine.h"

#include "pidistill/util/error.h"

#include <ATen/ATen.h>

#include <cstdio>
#include <cstring>
#include <map>
#include <set>
#include <unordered_map>

namespace pidistill {

using Kind = PyValue::Kind;

const PyValue* PyValue::get(const std::string& key) const {
  if (kind != Kind::Dict) return nullptr;
  auto it = index.find(key);
  return it == index.end() ? nullptr : items[it->second + 1];
}

const char* kind_name(Kind kind) {
  switch (kind) {
    case Kind::None:
      return "None";
    case Kind::Bool:
      return "bool";
    case Kind::Int:
      return "int";
    case Kind::Float:
      return "float";
    case Kind::Str:
      return "str";
    case Kind::Bytes:
      return "bytes";
    case Kind::Tuple:
      return "tuple";
    case Kind::List:
      return "list";
    case Kind::Set:
      return "set";
    case Kind::Dict:
      return "dict";
    case Kind::Global:
      return "global";
    case Kind::Object:
      return "object";
    case Kind::Storage:
      return "storage";
    case Kind::Tensor:
      return "tensor";
  }
  return "?";
}

c10::ScalarType storage_dtype(const std::string& name) {
  static const std::map<std::string, at::ScalarType> types = {
      {"DoubleStorage", at::kDouble},     {"FloatStorage", at::kFloat}, {"HalfStorage", at::kHalf},
      {"BFloat16Storage", at::kBFloat16}, {"LongStorage", at::kLong},   {"IntStorage", at::kInt},
      {"ShortStorage", at::kShort},       {"CharStorage", at::kChar},   {"ByteStorage", at::kByte},
      {"BoolStorage", at::kBool},
  };
  auto it = types.find(name);
  return it == types.end() ? at::ScalarType::Undefined : it->second;
}

namespace {

// Inert classes: rebuilt as an Object holding the state BUILD gives it, never constructed or called.
// torch.nn containers and parameter-free layers hold no code of their own that loading would need;
// argparse.Namespace is a bag of attributes (training scripts save their options with it).
const std::set<std::string> kInertClasses = {
    "torch.nn.modules.container.ModuleDict",    "torch.nn.modules.container.ModuleList",
    "torch.nn.modules.container.Sequential",    "torch.nn.modules.container.ParameterDict",
    "torch.nn.modules.container.ParameterList", "torch.nn.modules.dropout.Dropout",
    "torch.nn.modules.linear.Identity",         "argparse.Namespace",
};

// Globals with a C++ meaning (see Machine::call), plus the storage classes (only as persistent-id tags)
// and builtins.object (only as copyreg._reconstructor's base).
const std::set<std::string>& allowed_set() {
  static const std::set<std::string> globals = [] {
    std::set<std::string> g = {
        "collections.OrderedDict",
        "builtins.dict",
        "builtins.set",
        "builtins.frozenset",
        "builtins.object",
        "_codecs.encode",
        "copyreg._reconstructor",
        "torch._utils._rebuild_tensor_v2",
        "torch._utils._rebuild_parameter",
        "torch._utils._rebuild_parameter_with_state",
        "torch.jit._pickle.restore_type_tag",
        "torch.storage._load_from_bytes",
        "torch_utils.persistence._reconstruct_persistent_obj",
        "numpy.core.multiarray.scalar",
        "numpy._core.multiarray.scalar",
        "numpy.dtype",
    };
    for (const char* s :
         {"Double", "Float", "Half", "BFloat16", "Long", "Int", "Short", "Char", "Byte", "Bool"})
      g.insert(std::string("torch.") + s + "Storage");
    g.insert(kInertClasses.begin(), kInertClasses.end());
    return g;
  }();
  return globals;
}

// Python 2 names that pickle protocol 2 writes (pickle's fix_imports), mapped to Python 3's.
std::string python3_module(const std::string& module) {
  if (module == "__builtin__") return "builtins";
  if (module == "copy_reg") return "copyreg";
  return module;
}

// UTF-8 text whose code points are all below 256 -> those bytes (Python's str.encode('latin1')).
bool latin1_bytes(const std::string& utf8, std::string& out) {
  out.clear();
  for (size_t i = 0; i < utf8.size();) {
    const unsigned char c = static_cast<unsigned char>(utf8[i]);
    if (c < 0x80) {
      out.push_back(static_cast<char>(c));
      ++i;
    } else if ((c & 0xe0) == 0xc0 && i + 1 < utf8.size()) {
      const unsigned cp = ((c & 0x1f) << 6) | (static_cast<unsigned char>(utf8[i + 1]) & 0x3f);
      if (cp > 0xff) return false;
      out.push_back(static_cast<char>(cp));
      i += 2;
    } else {
      return false;
    }
  }
  return true;
}

class Machine {
 public:
  Machine(PyArena& arena, const std::string& data, size_t start, const PickleOptions& options)
      : arena_(arena), data_(data), pos_(start), options_(options) {}

  PickleResult run() {
    while (true) {
      if (pos_ >= data_.size()) bad("ends without a STOP opcode (truncated)");
      op_pos_ = pos_;
      const unsigned char op = byte();
      switch (op) {
        case 0x80:
          byte();
          break;  // PROTO n
        case 0x95:
          bytes(8);
          break;     // FRAME len: only a read-ahead hint
        case '.': {  // STOP
          result_.root = pop();
          result_.end = pos_;
          return result_;
        }
        case '(':
          marks_.push_back(stack_.size());
          break;  // MARK
        case '0':
          pop();
          break;  // POP
        case '1':
          pop_mark();
          break;  // POP_MARK
        case '2':
          push(top());
          break;  // DUP
        case 'N':
          push(make(Kind::None));
          break;
        case 0x88:
          push(boolean(true));
          break;  // NEWTRUE
        case 0x89:
          push(boolean(false));
          break;  // NEWFALSE
        case 'J':
          push(integer(static_cast<int32_t>(uint_le(4))));
          break;  // BININT
        case 'K':
          push(integer(static_cast<int64_t>(uint_le(1))));
          break;  // BININT1
        case 'M':
          push(integer(static_cast<int64_t>(uint_le(2))));
          break;  // BININT2
        case 0x8a:
          push(long1(uint_le(1)));
          break;  // LONG1
        case 'G':
          push(binfloat());
          break;  // BINFLOAT
        case 'X':
          push(text(Kind::Str, uint_le(4)));
          break;  // BINUNICODE
        case 0x8c:
          push(text(Kind::Str, uint_le(1)));
          break;  // SHORT_BINUNICODE
        case 0x8d:
          push(text(Kind::Str, uint_le(8)));
          break;  // BINUNICODE8
        case 'B':
          push(text(Kind::Bytes, uint_le(4)));
          break;  // BINBYTES
        case 'C':
          push(text(Kind::Bytes, uint_le(1)));
          break;  // SHORT_BINBYTES
        case 0x8e:
          push(text(Kind::Bytes, uint_le(8)));
          break;  // BINBYTES8
        case 'q':
          memo_put(uint_le(1));
          break;  // BINPUT
        case 'r':
          memo_put(uint_le(4));
          break;  // LONG_BINPUT
        case 0x94:
          memo_put(memo_.size());
          break;  // MEMOIZE
        case 'h':
          memo_get(uint_le(1));
          break;  // BINGET
        case 'j':
          memo_get(uint_le(4));
          break;  // LONG_BINGET
        case '}':
          push(make(Kind::Dict));
          break;  // EMPTY_DICT
        case ']':
          push(make(Kind::List));
          break;  // EMPTY_LIST
        case ')':
          push(make(Kind::Tuple));
          break;  // EMPTY_TUPLE
        case 0x8f:
          push(make(Kind::Set));
          break;     // EMPTY_SET
        case 'd': {  // DICT
          auto items = pop_mark();
          PyValue* d = make(Kind::Dict);
          for (size_t i = 0; i + 1 < items.size(); i += 2) dict_set(d, items[i], items[i + 1]);
          push(d);
          break;
        }
        case 'l':
          push(sequence(Kind::List, pop_mark()));
          break;  // LIST
        case 't':
          push(sequence(Kind::Tuple, pop_mark()));
          break;  // TUPLE
        case 0x91:
          push(sequence(Kind::Set, pop_mark()));
          break;  // FROZENSET
        case 0x85:
        case 0x86:
        case 0x87: {  // TUPLE1..3
          const size_t k = op - 0x84;
          if (stack_.size() < k + floor()) bad("TUPLE" + std::to_string(k) + " needs more stack items");
          std::vector<PyValue*> items(stack_.end() - k, stack_.end());
          stack_.resize(stack_.size() - k);
          push(sequence(Kind::Tuple, std::move(items)));
          break;
        }
        case 's': {  // SETITEM
          PyValue* v = pop();
          PyValue* k = pop();
          dict_set(top(), k, v);
          break;
        }
        case 'u': {  // SETITEMS
          auto items = pop_mark();
          if (items.size() % 2) bad("SETITEMS with an odd number of items (damaged pickle)");
          PyValue* d = top();
          for (size_t i = 0; i < items.size(); i += 2) dict_set(d, items[i], items[i + 1]);
          break;
        }
        case 'a': {  // APPEND
          PyValue* v = pop();
          list_of(top(), "APPEND").push_back(v);
          break;
        }
        case 'e': {  // APPENDS
          auto items = pop_mark();
          auto& l = list_of(top(), "APPENDS");
          l.insert(l.end(), items.begin(), items.end());
          break;
        }
        case 0x90: {  // ADDITEMS
          auto items = pop_mark();
          PyValue* set = top();
          if (!set->is(Kind::Set)) bad("ADDITEMS target is not a set");
          set->items.insert(set->items.end(), items.begin(), items.end());
          break;
        }
        case 'c': {  // GLOBAL "module\nname\n"
          std::string module = line();
          std::string name = line();
          push(global(module, name));
          break;
        }
        case 0x93: {  // STACK_GLOBAL
          PyValue* name = pop();
          PyValue* module = pop();
          push(global(str(module, "STACK_GLOBAL module"), str(name, "STACK_GLOBAL name")));
          break;
        }
        case 'R': {  // REDUCE callable(*args)
          PyValue* args = pop();
          PyValue* callable = pop();
          push(call(callable, args));
          break;
        }
        case 0x81: {  // NEWOBJ cls.__new__(cls, *args)
          PyValue* args = pop();
          PyValue* cls = pop();
          push(new_object(cls, args));
          break;
        }
        case 'b': {  // BUILD
          PyValue* state = pop();
          build(top(), state);
          break;
        }
        case 'Q':
          push(persistent_load(pop()));
          break;  // BINPERSID
        default: {
          char hex[8];
          std::snprintf(hex, sizeof(hex), "0x%02x", op);
          bad(std::string("unsupported pickle opcode ") + hex +
              " (this reader knows the subset torch.save and EDM's pickles use; convert the file to "
              "safetensors)");
        }
      }
    }
  }

 private:
  [[noreturn]] void bad(const std::string& what) const {
    fail(options_.path, options_.label + " byte " + std::to_string(op_pos_) + ": " + what);
  }

  PyValue* make(Kind kind) { return arena_.make(kind); }
  PyValue* boolean(bool b) {
    PyValue* v = make(Kind::Bool);
    v->b = b;
    return v;
  }
  PyValue* integer(int64_t i) {
    PyValue* v = make(Kind::Int);
    v->i = i;
    return v;
  }
  PyValue* sequence(Kind kind, std::vector<PyValue*> items) {
    PyValue* v = make(kind);
    v->items = std::move(items);
    return v;
  }
  PyValue* text(Kind kind, uint64_t n) {
    PyValue* v = make(kind);
    v->s = bytes(n);
    return v;
  }

  unsigned char byte() {
    if (pos_ >= data_.size()) bad("truncated pickle");
    return static_cast<unsigned char>(data_[pos_++]);
  }
  // Why the check comes first: a claimed length is never trusted beyond the bytes that are there.
  std::string bytes(uint64_t n) {
    if (n > data_.size() - pos_)
      bad("truncated pickle: needs " + std::to_string(n) + " bytes, " + std::to_string(data_.size() - pos_) +
          " remain");
    std::string s = data_.substr(pos_, n);
    pos_ += n;
    return s;
  }
  uint64_t uint_le(int n) {
    if (static_cast<uint64_t>(n) > data_.size() - pos_) bad("truncated pickle");
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(data_[pos_ + i]);
    pos_ += n;
    return v;
  }
  PyValue* long1(uint64_t n) {  // little-endian two's complement of n bytes
    std::string b = bytes(n);
    PyValue* v = make(Kind::Int);
    if (n > 8) {  // e.g. the legacy torch.save magic number: kept as bytes, compared, never computed with
      v->s = b;
      return v;
    }
    uint64_t u = 0;
    for (int i = static_cast<int>(n) - 1; i >= 0; --i) u = (u << 8) | static_cast<unsigned char>(b[i]);
    if (n > 0 && n < 8 && (static_cast<unsigned char>(b[n - 1]) & 0x80)) u |= ~uint64_t{0} << (8 * n);
    v->i = static_cast<int64_t>(u);
    return v;
  }
  PyValue* binfloat() {  // big-endian IEEE double
    std::string b = bytes(8);
    uint64_t u = 0;
    for (int i = 0; i < 8; ++i) u = (u << 8) | static_cast<unsigned char>(b[i]);
    PyValue* v = make(Kind::Float);
    std::memcpy(&v->f, &u, 8);
    return v;
  }
  std::string line() {
    size_t end = data_.find('\n', pos_);
    if (end == std::string::npos || end - pos_ > 256) bad("truncated or overlong GLOBAL name");
    std::string s = data_.substr(pos_, end - pos_);
    pos_ = end + 1;
    return s;
  }

  size_t floor() const { return marks_.empty() ? 0 : marks_.back(); }
  void push(PyValue* v) { stack_.push_back(v); }
  PyValue* pop() {
    if (stack_.size() <= floor()) bad("pop from an empty stack (damaged pickle)");
    PyValue* v = stack_.back();
    stack_.pop_back();
    return v;
  }
  PyValue* top() {
    if (stack_.size() <= floor()) bad("empty stack (damaged pickle)");
    return stack_.back();
  }
  std::vector<PyValue*> pop_mark() {
    if (marks_.empty()) bad("no MARK on the stack (damaged pickle)");
    const size_t m = marks_.back();
    marks_.pop_back();
    std::vector<PyValue*> items(stack_.begin() + m, stack_.end());
    stack_.resize(m);
    return items;
  }
  void memo_put(uint64_t i) { memo_[i] = top(); }
  void memo_get(uint64_t i) {
    auto it = memo_.find(i);
    if (it == memo_.end()) bad("memo key " + std::to_string(i) + " was never stored (damaged pickle)");
    push(it->second);
  }

  std::string str(const PyValue* v, const std::string& what) {
    if (!v->is(Kind::Str)) bad(what + " must be a string, not " + kind_name(v->kind));
    return v->s;
  }
  int64_t int_of(const PyValue* v, const std::string& what) {
    if (!v->is(Kind::Int) || !v->s.empty())
      bad(what + " must be a 64-bit integer, not " + kind_name(v->kind));
    return v->i;
  }
  std::vector<int64_t> ints(const PyValue* v, const std::string& what) {
    if (!v->is(Kind::Tuple) && !v->is(Kind::List)) bad(what + " must be a tuple of integers");
    std::vector<int64_t> out;
    for (const PyValue* x : v->items) out.push_back(int_of(x, what));
    return out;
  }
  std::vector<PyValue*>& list_of(PyValue* v, const char* op) {
    if (!v->is(Kind::List)) bad(std::string(op) + " target is a " + kind_name(v->kind) + ", not a list");
    return v->items;
  }
  void dict_set(PyValue* d, PyValue* k, PyValue* v) {
    if (!d->is(Kind::Dict)) bad(std::string("SETITEM target is a ") + kind_name(d->kind) + ", not a dict");
    if (k->is(Kind::Str)) {
      auto [it, fresh] = d->index.emplace(k->s, d->items.size());
      if (!fresh) {
        d->items[it->second + 1] = v;
        return;
      }
    }
    d->items.push_back(k);
    d->items.push_back(v);
  }
  const std::vector<PyValue*>& args_of(const PyValue* args, const std::string& f) {
    if (!args->is(Kind::Tuple)) bad(f + " called with " + kind_name(args->kind) + " arguments, not a tuple");
    return args->items;
  }

  PyValue* global(std::string module, const std::string& name) {
    module = python3_module(module);
    const std::string full = module + "." + name;
    if (!allowed_set().count(full))
      bad("global '" + full +
          "' is not allowed: this reader accepts only the torch tensor, EDM persistence, numpy scalar and "
          "container globals listed in docs/CHECKPOINTS.md and executes nothing (refused, not loaded)");
    if (full == "torch.storage._load_from_bytes" && !options_.load_from_bytes)
      bad("global '" + full + "' is not allowed here (storages inside a storage are refused)");
    PyValue* v = make(Kind::Global);
    v->s = full;
    return v;
  }

  PyValue* object(const std::string& cls) {
    PyValue* v = make(Kind::Object);
    v->s = cls;
    return v;
  }

  // NEWOBJ: only the inert classes, with no constructor arguments.
  PyValue* new_object(const PyValue* cls, const PyValue* args) {
    if (!cls->is(Kind::Global)) bad(std::string("NEWOBJ on a ") + kind_name(cls->kind) + ", not a class");
    if (cls->s == "collections.OrderedDict" || cls->s == "builtins.dict") return make(Kind::Dict);
    if (cls->s == "builtins.set" || cls->s == "builtins.frozenset") return make(Kind::Set);
    if (!kInertClasses.count(cls->s))
      bad("NEWOBJ of '" + cls->s + "', which is not a class this reader rebuilds");
    if (!args_of(args, cls->s).empty()) bad("NEWOBJ of '" + cls->s + "' with constructor arguments");
    return object(cls->s);
  }

  void build(PyValue* obj, PyValue* state) {
    if (obj->is(Kind::Object)) {
      if (obj->s == "numpy.dtype") {
        // state (version, byteorder, ...): only little-endian or byte-order-free data is read.
        if (!state->is(Kind::Tuple) || state->items.size() < 2 || !state->items[1]->is(Kind::Str))
          bad("numpy.dtype state is not (version, byteorder, ...)");
        const std::string& order = state->items[1]->s;
        if (order != "<" && order != "|" && order != "=")
          bad("numpy dtype with byte order '" + order + "' (only little-endian data is read)");
        return;
      }
      // (dict, slotstate) or dict: the instance's __dict__.
      if (state->is(Kind::Tuple) && !state->items.empty()) state = state->items[0];
      if (!state->is(Kind::Dict))
        bad("BUILD of '" + obj->s + "' with a " + kind_name(state->kind) + " state");
      obj->state = state;
      return;
    }
    // An OrderedDict's or a tensor's BUILD state (metadata, hooks) is not needed.
    if (obj->is(Kind::Dict) || obj->is(Kind::Tensor) || obj->is(Kind::Set)) return;
    bad(std::string("BUILD on a ") + kind_name(obj->kind));
  }

  // ('storage', storage_class, key, location, numel[, view_metadata]) -> a Storage whose data comes later.
  PyValue* persistent_load(const PyValue* pid) {
    if (!pid->is(Kind::Tuple) || pid->items.size() < 3 || !pid->items[0]->is(Kind::Str) ||
        pid->items[0]->s != "storage")
      bad("persistent id is not a ('storage', type, key, location, numel) tuple");
    const PyValue* cls = pid->items[1];
    if (!cls->is(Kind::Global)) bad("persistent id storage type is not a class");
    const std::string name = cls->s.substr(cls->s.rfind('.') + 1);
    const c10::ScalarType dtype = storage_dtype(name);
    if (dtype == at::ScalarType::Undefined || cls->s.rfind("torch.", 0) != 0)
      bad("unsupported storage type " + cls->s);
    if (pid->items.size() > 5 && !pid->items[5]->is(Kind::None))
      bad("storage views (legacy view_metadata) are not supported");
    PyValue* v = make(Kind::Storage);
    const PyValue* key = pid->items[2];
    v->s = key->is(Kind::Int) ? std::to_string(key->i) : str(key, "storage key");
    v->dtype = dtype;
    result_.storages.push_back(v);
    return v;
  }

  PyValue* call(const PyValue* callable, const PyValue* args_value) {
    if (!callable->is(Kind::Global)) bad(std::string("REDUCE on a ") + kind_name(callable->kind));
    const std::string& f = callable->s;
    const auto& args = args_of(args_value, f);
    auto need = [&](size_t n) {
      if (args.size() < n)
        bad(f + " needs " + std::to_string(n) + " arguments, got " + std::to_string(args.size()));
    };
    if (f == "collections.OrderedDict" || f == "builtins.dict") {
      PyValue* d = make(Kind::Dict);
      if (!args.empty()) {  // OrderedDict([(k, v), ...])
        if (!args[0]->is(Kind::List) && !args[0]->is(Kind::Tuple))
          bad(f + " of a " + kind_name(args[0]->kind));
        for (PyValue* kv : args[0]->items) {
          if (!kv->is(Kind::Tuple) || kv->items.size() != 2) bad(f + " item is not a (key, value) pair");
          dict_set(d, kv->items[0], kv->items[1]);
        }
      }
      return d;
    }
    if (f == "builtins.set" || f == "builtins.frozenset") {
      PyValue* s = make(Kind::Set);
      if (!args.empty()) {
        if (!args[0]->is(Kind::List) && !args[0]->is(Kind::Tuple))
          bad(f + " of a " + kind_name(args[0]->kind));
        s->items = args[0]->items;
      }
      return s;
    }
    if (f == "_codecs.encode") {  // how protocol 2 writes bytes: _codecs.encode(text, 'latin1')
      need(2);
      const std::string encoding = str(args[1], "_codecs.encode encoding");
      if (encoding != "latin1" && encoding != "latin-1")
        bad("_codecs.encode with encoding '" + encoding + "'");
      PyValue* b = make(Kind::Bytes);
      if (!latin1_bytes(str(args[0], "_codecs.encode text"), b->s)) bad("_codecs.encode text is not latin-1");
      return b;
    }
    if (f == "copyreg._reconstructor") {  // protocols 0-1: object.__new__(cls)
      need(3);
      if (!args[0]->is(Kind::Global) || !kInertClasses.count(args[0]->s))
        bad("copyreg._reconstructor of a class this reader does not rebuild");
      if (!args[1]->is(Kind::Global) || args[1]->s != "builtins.object" || !args[2]->is(Kind::None))
        bad("copyreg._reconstructor with a base other than object");
      return object(args[0]->s);
    }
    if (f == "torch._utils._rebuild_tensor_v2") return rebuild_tensor(args);
    if (f == "torch._utils._rebuild_parameter" || f == "torch._utils._rebuild_parameter_with_state") {
      need(1);
      if (!args[0]->is(Kind::Tensor)) bad(f + "'s first argument is not a tensor");
      return args[0];
    }
    // C++ torch::pickle_save tags typed containers: restore_type_tag(value, "List[Tensor]") is the value.
    if (f == "torch.jit._pickle.restore_type_tag") {
      need(1);
      return args[0];
    }
    if (f == "torch.storage._load_from_bytes") {
      need(1);
      if (!args[0]->is(Kind::Bytes)) bad(f + "'s argument is not bytes");
      return options_.load_from_bytes(args[0]->s, options_.label + " byte " + std::to_string(op_pos_));
    }
    if (f == "torch_utils.persistence._reconstruct_persistent_obj") return persistent_object(args);
    if (f == "numpy.dtype") {  // numpy.dtype('f8', align, copy)
      need(1);
      PyValue* d = object("numpy.dtype");
      d->items.push_back(args[0]);
      str(args[0], "numpy.dtype name");
      return d;
    }
    if (f == "numpy.core.multiarray.scalar" || f == "numpy._core.multiarray.scalar")
      return numpy_scalar(args);
    if (kInertClasses.count(f)) {  // e.g. argparse.Namespace(): its attributes come with BUILD
      if (!args.empty()) bad(f + " called with arguments (only attribute state is read)");
      return object(f);
    }
    bad("global '" + f + "' cannot be called");
  }

  // meta = {type: 'class', version, module_src, class_name, state}: the class is named, never defined;
  // module_src (Python source) is not looked at.
  PyValue* persistent_object(const std::vector<PyValue*>& args) {
    if (args.size() != 1 || !args[0]->is(Kind::Dict)) bad("_reconstruct_persistent_obj needs one meta dict");
    const PyValue* meta = args[0];
    const PyValue* type = meta->get("type");
    const PyValue* name = meta->get("class_name");
    const PyValue* state = meta->get("state");
    if (!type || !type->is(Kind::Str) || type->s != "class")
      bad("persistent object meta['type'] is not 'class' (only persistent classes are read)");
    if (!name || !name->is(Kind::Str)) bad("persistent object has no meta['class_name']");
    if (!state || !state->is(Kind::Dict))
      bad("persistent object '" + name->s + "' has no meta['state'] dict");
    PyValue* obj = object(name->s);
    obj->persistent = true;
    obj->state = const_cast<PyValue*>(state);
    return obj;
  }

  PyValue* numpy_scalar(const std::vector<PyValue*>& args) {
    if (args.size() != 2 || !args[0]->is(Kind::Object) || args[0]->s != "numpy.dtype" ||
        !args[1]->is(Kind::Bytes))
      bad("numpy scalar is not (dtype, bytes)");
    const std::string type = args[0]->items[0]->s;
    const std::string& raw = args[1]->s;
    auto expect = [&](size_t n) {
      if (raw.size() != n) bad("numpy " + type + " scalar of " + std::to_string(raw.size()) + " bytes");
    };
    PyValue* v;
    if (type == "f8" || type == "f4") {
      v = make(Kind::Float);
      if (type == "f8") {
        expect(8);
        std::memcpy(&v->f, raw.data(), 8);
      } else {
        expect(4);
        float x;
        std::memcpy(&x, raw.data(), 4);
        v->f = x;
      }
    } else if (type == "i8" || type == "i4") {
      v = make(Kind::Int);
      if (type == "i8") {
        expect(8);
        std::memcpy(&v->i, raw.data(), 8);
      } else {
        expect(4);
        int32_t x;
        std::memcpy(&x, raw.data(), 4);
        v->i = x;
      }
    } else if (type == "b1") {
      expect(1);
      v = boolean(raw[0] != 0);
    } else {
      bad("numpy scalar of dtype '" + type + "' (only f8, f4, i8, i4, b1 are read)");
    }
    return v;
  }

  // _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
  PyValue* rebuild_tensor(const std::vector<PyValue*>& args) {
    if (args.size() < 4) bad("_rebuild_tensor_v2 needs at least 4 arguments");
    if (!args[0]->is(Kind::Storage)) bad("_rebuild_tensor_v2's first argument is not a storage");
    PyValue* t = make(Kind::Tensor);
    t->state = args[0];
    t->offset = int_of(args[1], "storage offset");
    t->sizes = ints(args[2], "tensor size");
    t->strides = ints(args[3], "tensor stride");
    if (t->sizes.size() != t->strides.size()) bad("tensor size and stride differ in length");
    if (t->sizes.size() > 64) bad("tensor of " + std::to_string(t->sizes.size()) + " dimensions");
    result_.tensors.push_back(t);
    return t;
  }

  PyArena& arena_;
  const std::string& data_;
  size_t pos_, op_pos_ = 0;
  const PickleOptions& options_;
  std::vector<PyValue*> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint64_t, PyValue*> memo_;
  PickleResult result_;
};

}  // namespace

PickleResult run_pickle(PyArena& arena, const std::string& data, size_t start, const PickleOptions& options) {
  return Machine(arena, data, start, options).run();
}

void materialize_tensors(const std::vector<PyValue*>& tensors, const std::string& where) {
  for (PyValue* t : tensors) {
    const PyValue* s = t->state;
    if (!s->tensor.defined())
      fail(where, "tensor of storage '" + s->s + "' whose data the file does not hold");
    const at::Tensor& flat = s->tensor;
    // The view must stay inside the storage (as_strided does not check); sums checked for overflow.
    int64_t last = t->offset, numel = 1;
    bool empty = false, overflow = false;
    for (size_t i = 0; i < t->sizes.size(); ++i) {
      const int64_t size = t->sizes[i], stride = t->strides[i];
      if (size < 0 || stride < 0) fail(where, "negative tensor size or stride on storage '" + s->s + "'");
      if (size == 0) empty = true;
      int64_t step;
      overflow |= __builtin_mul_overflow(size > 0 ? size - 1 : 0, stride, &step);
      overflow |= __builtin_add_overflow(last, step, &last);
      overflow |= __builtin_mul_overflow(numel, size, &numel);
    }
    if (t->offset < 0 || overflow || (!empty && last >= flat.numel()))
      fail(where, "tensor view (offset " + std::to_string(t->offset) + ", last element " +
                      (overflow ? std::string("overflows") : std::to_string(last)) +
                      ") goes beyond storage '" + s->s + "' of " + std::to_string(flat.numel()) +
                      " items (truncated or damaged file)");
    // Why refuse: a stride-0 or overlapping view with more elements than its storage expands a few bytes of
    // the file into gigabytes as soon as anything copies it (convert, load, inspect); weights never need it.
    if (!empty && numel > flat.numel())
      fail(where, "tensor view of " + std::to_string(numel) + " elements on storage '" + s->s + "' of only " +
                      std::to_string(flat.numel()) +
                      " items (stride 0 or overlapping strides would expand the file's data; refused as "
                      "damaged or hostile; re-save it with .contiguous())");
    if (empty) {
      t->tensor = at::empty(t->sizes, flat.options());
    } else {
      t->tensor = flat.as_strided(t->sizes, t->strides, t->offset).clone(at::MemoryFormat::Contiguous);
    }
  }
}

const std::vector<std::string>& allowed_pickle_globals() {
  static const std::vector<std::string> list(allowed_set().begin(), allowed_set().end());
  return list;
}

}  // namespace pidistill
