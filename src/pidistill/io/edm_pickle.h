// EDM's network pickles (network-snapshot-*.pkl) and training states (training-state-*.pt), read as data:
// the network's class names, constructor kwargs and constants, its state dict, the loss and dataset options.
#pragma once
#include "pidistill/io/safetensors.h"
#include "pidistill/io/torch_pickle.h"

#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace pidistill {

struct EdmPickle {
  std::string path;
  std::string format;                                          // as TorchPickle::format
  std::vector<std::pair<std::string, std::string>> top_level;  // key -> a short description of its value
  std::string
      network_key;  // "ema" (network pickle) or "net" (training state); empty: the file is the network
  std::string precond_class;  // EDMPrecond, VPPrecond or VEPrecond
  std::string precond;        // edm, vp or ve
  std::string model_class;    // the inner network's class: SongUNet or DhariwalUNet
  std::string init_kwargs;    // the preconditioner's _init_kwargs as JSON: the whole architecture
  std::map<std::string, double>
      constants;               // sigma_min, sigma_max, sigma_data, beta_d, beta_min, M, epsilon_t
  bool use_fp16 = false;       // recorded as the file says; pidistill computes in float32 on CPU
  NamedTensors state;          // parameters and persistent buffers under EDM's names, 'model.' prefixed
  std::string loss_class;      // e.g. VPLoss; empty when the file has no loss_fn
  std::string loss_kwargs;     // the loss's hyper-parameters as JSON
  std::string dataset_kwargs;  // JSON; empty when absent
};

// The EDM network in a parsed file, or nullopt when the file holds no persistent EDM object at the top
// (a plain state dict). A persistent network that is not an EDM/VP/VE preconditioner is an Error.
std::optional<EdmPickle> edm_pickle_from(const TorchPickle& file);

// read_torch_pickle + edm_pickle_from; a file without an EDM network is an Error.
EdmPickle read_edm_pickle(const std::string& path);

// A value as JSON (tensors as "tensor F32 [shape]", objects as {"__class__": ..., attributes}); nesting
// deeper than kMaxPickleDepth is an Error naming `where`.
std::string pickle_to_json(const PyValue* value, const std::string& where);

}  // namespace pidistill
