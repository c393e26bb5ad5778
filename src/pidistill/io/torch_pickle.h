// Reading PyTorch torch.save zip checkpoints (state dicts, OrderedDict included) without Python.
#pragma once
#include "pidistill/io/safetensors.h"

#include <string>

namespace pidistill {

// Reads the tensors of a torch.save file written in the zip format (torch >= 1.6): a dict or
// OrderedDict of tensors, possibly nested (nested keys are joined with '.'). Non-tensor values
// are skipped. Throws Error naming the path and the entry or byte offset on any fault: not a zip,
// truncated, unsupported pickle opcode, missing storage record.
NamedTensors read_torch_checkpoint(const std::string& path);

// True when the file starts like a zip archive (the torch.save format since 1.6).
bool is_zip_file(const std::string& path);

}  // namespace pidistill
