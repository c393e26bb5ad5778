// torch.save's zip layout and the pickle Python writes for a dict of tensors, opcode by opcode (protocol 2,
// no memo: every GLOBAL is spelled out again, which any unpickler accepts).
#include "pidistill/io/torch_save_writer.h"

#include "pidistill/io/zip_writer.h"
#include "pidistill/util/error.h"
#include "pidistill/util/files.h"

#include <ATen/ATen.h>

#include <cstring>
#include <filesystem>
#include <set>

namespace pidistill {

namespace {

class PickleWriter {
 public:
  std::string out = "\x80\x02";  // PROTO 2, torch.save's default pickle_protocol

  void op(char c) { out.push_back(c); }
  void raw(uint64_t v, int n) {
    for (int i = 0; i < n; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  }
  void str(const std::string& s) {  // BINUNICODE: 4-byte length, UTF-8 (our names are ASCII)
    op('X');
    raw(s.size(), 4);
    out += s;
  }
  void global(const std::string& module, const std::string& name) {  // GLOBAL
    op('c');
    out += module + "\n" + name + "\n";
  }
  void integer(int64_t v) {
    if (v >= 0 && v < 256) {
      op('K');  // BININT1
      raw(v, 1);
    } else if (v >= 0 && v < 65536) {
      op('M');  // BININT2
      raw(v, 2);
    } else if (v >= INT32_MIN && v <= INT32_MAX) {
      op('J');  // BININT: signed 32-bit
      raw(static_cast<uint32_t>(v), 4);
    } else {
      op('\x8a');  // LONG1: 8 little-endian two's complement bytes
      raw(8, 1);
      raw(static_cast<uint64_t>(v), 8);
    }
  }
  void int_tuple(at::IntArrayRef values) {
    if (values.size() > 3) op('(');  // MARK
    for (int64_t v : values) integer(v);
    static const char kTuple[] = {')', '\x85', '\x86', '\x87'};  // EMPTY_TUPLE, TUPLE1, TUPLE2, TUPLE3
    op(values.size() > 3 ? 't' : kTuple[values.size()]);
  }
};

const char* storage_class(c10::ScalarType dtype) {
  switch (dtype) {
    case at::kDouble:
      return "DoubleStorage";
    case at::kFloat:
      return "FloatStorage";
    case at::kHalf:
      return "HalfStorage";
    case at::kBFloat16:
      return "BFloat16Storage";
    case at::kLong:
      return "LongStorage";
    case at::kInt:
      return "IntStorage";
    case at::kShort:
      return "ShortStorage";
    case at::kChar:
      return "CharStorage";
    case at::kByte:
      return "ByteStorage";
    case at::kBool:
      return "BoolStorage";
    default:
      return nullptr;
  }
}

}  // namespace

std::string torch_save_bytes(const NamedTensors& tensors, const std::string& archive,
                             const std::string& path) {
  std::set<std::string> seen;
  PickleWriter p;
  std::vector<at::Tensor> storages;
  p.op('}');  // EMPTY_DICT: a plain dict, which torch.load and load_state_dict take like an OrderedDict
  for (size_t begin = 0; begin < tensors.size(); begin += 1000) {  // SETITEMS in batches, as pickle does
    p.op('(');
    for (size_t i = begin; i < std::min(tensors.size(), begin + 1000); ++i) {
      const auto& [name, tensor] = tensors[i];
      if (!seen.insert(name).second) fail(path, "state dict key '" + name + "' given twice");
      if (!tensor.defined()) fail(path, "state dict key '" + name + "' holds no tensor");
      const char* cls = storage_class(tensor.scalar_type());
      if (!cls)
        fail(path, "state dict key '" + name + "' has dtype " +
                       std::string(c10::toString(tensor.scalar_type())) +
                       ", which torch.save storages do not hold here");
      const at::Tensor t = tensor.detach().cpu().contiguous();
      const std::string key = std::to_string(storages.size());
      storages.push_back(t);
      p.str(name);
      // _rebuild_tensor_v2(('storage', torch.<Type>Storage, key, 'cpu', numel), offset, size, stride,
      //                    requires_grad, backward_hooks=OrderedDict())
      p.global("torch._utils", "_rebuild_tensor_v2");
      p.op('(');  // MARK: the arguments
      p.op('(');  // MARK: the persistent id
      p.str("storage");
      p.global("torch", cls);
      p.str(key);
      p.str("cpu");
      p.integer(t.numel());
      p.op('t');  // TUPLE: the persistent id
      p.op('Q');  // BINPERSID
      p.integer(0);
      p.int_tuple(t.sizes());
      p.int_tuple(t.strides());
      p.op('\x89');  // NEWFALSE: requires_grad
      p.global("collections", "OrderedDict");
      p.op(')');
      p.op('R');  // REDUCE: OrderedDict()
      p.op('t');  // TUPLE: the arguments
      p.op('R');  // REDUCE: _rebuild_tensor_v2(...)
    }
    p.op('u');  // SETITEMS
  }
  p.op('.');  // STOP

  ZipWriter zip(path);
  zip.add(archive + "/data.pkl", p.out);
  zip.add(archive + "/byteorder", "little");
  for (size_t i = 0; i < storages.size(); ++i) {
    const at::Tensor& t = storages[i];
    std::string bytes(static_cast<size_t>(t.numel()) * t.element_size(), '\0');
    if (!bytes.empty()) std::memcpy(bytes.data(), t.data_ptr(), bytes.size());
    zip.add(archive + "/data/" + std::to_string(i), bytes, /*align=*/64);
  }
  zip.add(archive + "/version", "3\n");  // the file format version torch.save writes (1.13 through 2.x)
  return zip.finish();
}

void write_torch_state_dict(const std::string& path, const NamedTensors& tensors) {
  std::string archive = std::filesystem::path(path).stem().string();
  // Why: torch.load takes the folder name from the first record; a name with '/' or nothing would break it.
  if (archive.empty() || archive.find_first_of("/\\") != std::string::npos) archive = "archive";
  write_file_atomic(path, torch_save_bytes(tensors, archive, path));
}

}  // namespace pidistill
