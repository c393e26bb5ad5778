// Export of a network file to PyTorch: a torch.save state dict under EDM's or PID's key names, and a JSON of
// the constructor kwargs of the classes that load it (EDM's training.networks, PID's cm.network).
#pragma once
#include "pidistill/io/safetensors.h"
#include "pidistill/nets/net_file.h"

#include <string>

namespace pidistill {

struct PyTorchExport {
  NamedTensors state;  // PyTorch's state_dict() order; "edm": 'model.'-prefixed, "pid": without 'model.'
  std::string json;    // the kwargs file: class and kwargs, config, precond, student constants
};

// format "edm": EDMPrecond.state_dict() keys (VPPrecond/VEPrecond for vp/ve teachers); "pid": the inner
// network's keys, which EDM's SongUNet/DhariwalUNet and PID's SongUNet load. `source` is recorded in the
// JSON. Error naming `format` for another value, and naming the file's precond when it is not edm|vp|ve.
PyTorchExport pytorch_export(const LoadedNet& loaded, const std::string& format, const std::string& source);

// OUT.pt -> OUT.json (the extension replaced; added when there is none). Error when that is OUT itself.
std::string export_json_path(const std::string& out);

// Writes OUT (torch.save zip) and export_json_path(OUT), each atomically, the JSON last.
void write_pytorch_export(const std::string& out, const PyTorchExport& exported);

}  // namespace pidistill
