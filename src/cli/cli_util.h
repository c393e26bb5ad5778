// Pieces shared by the CLI commands: network options in EDM train.py style, reading any tensor file.
#pragma once
#include "pidistill/io/safetensors.h"
#include "pidistill/nets/net_config.h"

#include <CLI/CLI.hpp>
#include <c10/core/Device.h>

#include <optional>
#include <string>
#include <vector>

namespace pidistill::cli {

// The network-size options of every command that builds a network (EDM train.py's names); each replaces the
// preset's or config's value only when given.
struct ArchOverrides {
  int cbase = 0;             // --cbase: model_channels (EDM --cbase).
  std::vector<int> cres;     // --cres: channel_mult, e.g. 2,2,2 (EDM --cres).
  int blocks = 0;            // --blocks: num_blocks, residual blocks per resolution.
  std::vector<int> attn;     // --attn: attn_resolutions, e.g. 16 or 16,8; '' for none.
  bool attn_given = false;   // --attn was given (an empty list is a value: no attention)
};

void add_arch_override_options(CLI::App& cmd, ArchOverrides& options);
// Copies the options given on `cmd` into `config`.
void apply_arch_overrides(const ArchOverrides& options, const CLI::App& cmd, NetConfig& config);

// How a command learns a network's architecture when the weight file does not say it (e.g. a .pt state dict):
// a full JSON config, or an EDM train.py preset with overrides.
struct NetOptions {
  std::string config;   // --config: JSON text or a path to a JSON file, EDM keyword names.
  std::string arch;     // --arch: ddpmpp | ncsnpp | adm (EDM train.py presets).
  int resolution = 32;  // --resolution: image size (EDM takes it from the dataset; 32 = CIFAR-10).
  int channels = 3;     // --channels: color channels (3 = RGB).
  int label_dim = 0;    // --label-dim: number of classes, 0 = unconditional (EDM --cond).
  int augment_dim = 0;  // --augment-dim: augmentation labels, 9 for EDM's released CIFAR-10 nets.
  // With --config, these four too replace the config's value only when given.
  // The options below replace the config's value only when given:
  ArchOverrides sizes;            // --cbase, --cres, --blocks, --attn
  double dropout = 0;             // --dropout: dropout probability (EDM train.py trains with 0.13).
  const CLI::App* cmd = nullptr;  // the command they were parsed by, to tell which were given
};

void add_net_options(CLI::App& cmd, NetOptions& options);

// The config the options describe: --config or the --arch preset, then every option given on top; validated.
// nullopt when neither --config nor --arch was given (the weight file's own "config" metadata is used then);
// an override without --config/--arch is an Error.
std::optional<NetConfig> resolve_net_config(const NetOptions& options);

// The tensors of a safetensors file (with its metadata) or of a torch.save zip or legacy checkpoint (no
// metadata).
TensorFile read_any_tensor_file(const std::string& path);

// Safetensors' dtype names (F32, F64, I64, ...), which is what our files say.
std::string dtype_name(const at::Tensor& tensor);
std::string shape_string(const at::Tensor& tensor);  // "[4, 3, 16, 16]"

// A file of the bundled models/ folder: next to the binary's build folder (build/../models), in an installed
// prefix (bin/../share/pidistill/models), then ./models.
// Error naming the file and where it was looked for.
std::string bundled_model(const std::string& name);

// --device's value (cpu, cuda, cuda:1) as a device; an Error naming the option for anything else, and for cuda
// when this LibTorch has no CUDA or no GPU is visible.
c10::Device parse_device(const std::string& name);

}  // namespace pidistill::cli
