// Reading and writing safetensors files, the format of every weight, data and checkpoint file we write.
// Stable API (see pidistill/pidistill.h): read_safetensors, write_safetensors, TensorFile.
#pragma once
#include <ATen/core/Tensor.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

namespace pidistill {

using NamedTensors = std::vector<std::pair<std::string, at::Tensor>>;  // in file order

struct TensorFile {
  std::string path;
  NamedTensors tensors;                         // CPU tensors, dtype as stored
  std::map<std::string, std::string> metadata;  // the header's "__metadata__"

  bool has(const std::string& name) const;
  // The named tensor; throws Error "PATH: no tensor 'NAME'" when absent.
  const at::Tensor& get(const std::string& name) const;
  // The metadata value, or `fallback` when absent.
  std::string meta(const std::string& key, const std::string& fallback = "") const;
};

// Validates the header (length, JSON, dtypes, shapes against offsets, offsets within the file);
// any fault throws Error naming the path and the tensor or byte offset.
TensorFile read_safetensors(const std::string& path);

// Writes atomically: PATH.tmp is written, flushed and renamed over PATH, so a crash or a full disk
// never leaves a half-written PATH. Tensors are made contiguous and copied to CPU.
void write_safetensors(const std::string& path, const NamedTensors& tensors,
                       const std::map<std::string, std::string>& metadata = {});

}  // namespace pidistill
