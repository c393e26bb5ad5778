// Writing a state dict as Python's torch.save does (zip format, pickle protocol 2, a plain dict), so that
// torch.load reads it without our code, with weights_only=True (the default since PyTorch 2.6) included.
#pragma once
#include "pidistill/io/safetensors.h"

#include <string>

namespace pidistill {

// The bytes of torch.save({name: tensor, ...}) in `names` order: "<archive>/data.pkl" (a plain dict, each
// tensor a torch._utils._rebuild_tensor_v2 of its own storage; nothing else is referenced), "byteorder",
// "data/<i>" (64-byte aligned raw little-endian items) and "version". Tensors are made contiguous CPU copies;
// dtypes float64/32/16, bfloat16, int64/32/16/8, uint8 and bool. `path` names errors (a duplicate name, a
// dtype torch.save storages cannot hold, a file past 4 GiB).
std::string torch_save_bytes(const NamedTensors& tensors, const std::string& archive,
                             const std::string& path);

// torch_save_bytes written atomically to `path`; the archive folder is named after the file's stem, as
// torch.save names it.
void write_torch_state_dict(const std::string& path, const NamedTensors& tensors);

}  // namespace pidistill
