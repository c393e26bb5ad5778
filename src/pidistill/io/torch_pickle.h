// Reading PyTorch files without Python: torch.save zip and legacy checkpoints, and plain pickles (EDM's
// .pkl), through a restricted unpickler that executes nothing.
#pragma once
#include "pidistill/io/pickle_value.h"
#include "pidistill/io/safetensors.h"

#include <memory>
#include <string>

namespace pidistill {

// The object a torch.save file or a pickle holds, every tensor materialized. The arena owns all values.
struct TorchPickle {
  std::string path;
  std::string format;  // "zip torch.save", "legacy torch.save" or "pickle"
  std::shared_ptr<PyArena> arena;
  const PyValue* root = nullptr;
};

// Reads a torch.save zip (torch >= 1.6), a legacy torch.save, or a plain pickle (protocol 2+). Throws Error
// naming the path and the entry or byte offset on any fault: truncated, unsupported opcode, a global outside
// the allow-list (docs/CHECKPOINTS.md), missing storage, a view beyond its storage.
TorchPickle read_torch_pickle(const std::string& path);

// The tensors of a dict or OrderedDict of tensors, possibly nested (nested keys joined with '.'), or of a
// top-level list/tuple (names "0", "1", ...). Non-tensor values are skipped. `where` names errors.
NamedTensors flatten_tensors(const PyValue* root, const std::string& where);

// read_torch_pickle + flatten_tensors: a state dict saved with torch.save, zip or legacy.
NamedTensors read_torch_checkpoint(const std::string& path);

// True when the file starts like a zip archive (the torch.save format since 1.6).
bool is_zip_file(const std::string& path);
// True for a zip, a legacy torch.save or a pickle of protocol 2 or later (first byte 0x80).
bool is_torch_file(const std::string& path);

}  // namespace pidistill
