// Training checkpoints: named tensors (model, EMA, optimizer, RNG states) plus a JSON state (progress, options)
// in one safetensors file, written atomically so a crash or a full disk never loses the previous checkpoint.
#pragma once
// Why header-only: util sits below io in the link order, and the helper needs io's safetensors writer; inline
// functions are compiled into their callers (edm, pid), which link io already.
#include "pidistill/io/safetensors.h"
#include "pidistill/util/error.h"

#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>

#include <string>

namespace pidistill {

// Metadata keys of a checkpoint file.
inline const char* kCheckpointKindKey = "pidistill_checkpoint";  // what wrote it, e.g. "edm_train", "pid_distill"
inline const char* kCheckpointStateKey = "state";                // the JSON state text

// Writes tensors + state atomically (PATH.tmp, flush, rename). `kind` is checked again by load_checkpoint.
inline void save_checkpoint(const std::string& path, const std::string& kind, const NamedTensors& tensors,
                            const std::string& state_json) {
  write_safetensors(path, tensors, {{kCheckpointKindKey, kind}, {kCheckpointStateKey, state_json}});
}

// Reads a checkpoint and checks that `kind` wrote it; Error naming the file otherwise.
inline TensorFile load_checkpoint(const std::string& path, const std::string& kind) {
  TensorFile file = read_safetensors(path);
  std::string found = file.meta(kCheckpointKindKey);
  if (found.empty())
    fail(path, "not a training checkpoint (no metadata '" + std::string(kCheckpointKindKey) +
                   "'); hint: --resume takes a training-state-*.safetensors file of a run");
  if (found != kind)
    fail(path, "checkpoint of kind '" + found + "', expected '" + kind + "'; hint: resume with the command that wrote it");
  return file;
}

inline std::string checkpoint_state(const TensorFile& file) { return file.meta(kCheckpointStateKey, "{}"); }

// The tensors whose names start with `prefix`, with the prefix removed ("ema." -> the EMA network's state).
inline NamedTensors tensors_with_prefix(const TensorFile& file, const std::string& prefix) {
  NamedTensors out;
  for (const auto& [name, t] : file.tensors)
    if (name.compare(0, prefix.size(), prefix) == 0) out.emplace_back(name.substr(prefix.size()), t);
  return out;
}

// Appends `tensors` to `out` under `prefix` + name.
inline void add_with_prefix(NamedTensors& out, const std::string& prefix, const NamedTensors& tensors) {
  for (const auto& [name, t] : tensors) out.emplace_back(prefix + name, t);
}

// A generator's full state as a uint8 tensor (CPU mt19937 + normal cache), so resumed runs draw the same numbers.
inline at::Tensor generator_state(const at::Generator& gen) { return gen.get_state(); }

// Restores what generator_state saved; Error naming `where` (file and tensor name) if the state does not fit.
inline void set_generator_state(at::Generator& gen, const at::Tensor& state, const std::string& where) {
  try {
    gen.set_state(state);
  } catch (const std::exception& e) {
    fail(where, std::string("not a valid generator state (") + e.what() + ")");
  }
}

}  // namespace pidistill
