// `pidistill inspect FILE`: what a weight file or an EDM pickle holds, without running it.
#include "cli/cli_util.h"
#include "cli/commands.h"
#include "pidistill/io/edm_pickle.h"
#include "pidistill/io/torch_pickle.h"
#include "pidistill/metrics/classifier.h"
#include "pidistill/nets/net_file.h"
#include "pidistill/util/error.h"

#include <ATen/ATen.h>

#include <iostream>
#include <map>
#include <memory>

namespace pidistill::cli {
namespace {

struct InspectOptions {
  std::string file;  // a .safetensors file, a torch.save (.pt, zip or legacy) or an EDM pickle (.pkl)
  NetOptions net;    // for files that do not describe their network
  bool all = false;  // list every tensor, not just the first and last
};

void print_tensor_line(const std::pair<std::string, at::Tensor>& named) {
  std::cout << "  " << printable(named.first) << " " << dtype_name(named.second) << " "
            << shape_string(named.second) << "\n";
}

void print_tensors(const NamedTensors& tensors, bool all) {
  int64_t elements = 0;
  std::map<std::string, int> dtype_counts;
  for (const auto& [name, tensor] : tensors) {
    elements += tensor.numel();
    ++dtype_counts[dtype_name(tensor)];
  }
  std::cout << "tensors: " << tensors.size() << " (" << elements << " elements)\n";
  std::cout << "dtypes:";
  for (const auto& [dtype, count] : dtype_counts) std::cout << " " << dtype << " x" << count;
  std::cout << "\n";

  std::cout << "keys:\n";
  const size_t n = tensors.size();
  const size_t shown = 3;  // at each end
  for (size_t i = 0; i < n; ++i) {
    if (all || i < shown || i + shown >= n) {
      print_tensor_line(tensors[i]);
    } else if (i == shown) {
      std::cout << "  ... " << n - 2 * shown << " more (--all lists them)\n";
    }
  }
}

// An EDM network pickle or training state: what EDM's code would rebuild, read as data.
void print_edm(const EdmPickle& edm, const std::optional<NetConfig>& config_override, bool all) {
  const auto metadata = edm_net_metadata(edm);  // checks that our networks can build it
  const NetConfig config =
      config_override ? *config_override : net_config_from_metadata(edm.path, metadata.at("config"));
  const LoadedNet loaded = load_net(edm.path, config);
  int64_t parameters = 0;
  for (const at::Tensor& p : loaded.net->parameters()) parameters += p.numel();
  // Printed once the file has loaded, so that a refused file prints its one error line only.
  std::cout << "file: " << edm.path << "\n";
  std::cout << "format: " << edm.format << " with EDM persistent objects (read as data; no code is run)\n"
            << "top-level keys:\n";
  for (const auto& [key, what] : edm.top_level)
    std::cout << "  " << printable(key) << ": " << printable(what) << "\n";
  std::cout << "network: " << (edm.network_key.empty() ? "(the file)" : "'" + edm.network_key + "'") << " = "
            << edm.precond_class << "(" << edm.model_class << ")\n"
            << "init_kwargs: " << edm.init_kwargs << "\n"
            << "precond: " << edm.precond << " (" << edm.precond_class << ")";
  for (const auto& [k, v] : edm.constants) std::cout << " " << printable(k) << "=" << v;
  std::cout << "\n"
            << "use_fp16: " << (edm.use_fp16 ? "true" : "false")
            << " (recorded; pidistill computes in float32 on CPU)\n"
            << "model_type: " << config.model_type << "\n"
            << "config: " << net_config_to_json(config) << "\n"
            << "parameters: " << parameters << "\n";
  if (!edm.loss_class.empty()) std::cout << "loss_fn: " << edm.loss_class << " " << edm.loss_kwargs << "\n";
  if (!edm.dataset_kwargs.empty()) std::cout << "dataset_kwargs: " << edm.dataset_kwargs << "\n";
  print_tensors(edm.state, all);
}

void run_inspect(const InspectOptions& o) {
  std::optional<NetConfig> config = resolve_net_config(o.net);  // first: bad options fail before any output
  if (is_torch_file(o.file)) {
    if (auto edm = edm_pickle_from(read_torch_pickle(o.file))) {
      print_edm(*edm, config, o.all);
      return;
    }
  }
  const TensorFile file = read_any_tensor_file(o.file);
  if (!config && file.metadata.count("pidistill_classifier")) {
    // Not a diffusion network: its "config" is a classifier's, checked by loading it as one.
    auto classifier = load_classifier(o.file);
    int64_t parameters = 0;
    for (const at::Tensor& p : classifier->parameters()) parameters += p.numel();
    std::cout << "file: " << o.file << "\n"
              << "model_type: Classifier (image features for FD-FMNIST: pidistill fid --detector FILE)\n"
              << "config: " << to_json(classifier->config) << "\n"
              << "parameters: " << parameters << "\n";
    print_tensors(file.tensors, o.all);
    std::cout << "metadata:\n";
    for (const auto& [key, value] : file.metadata)
      if (key != "config") std::cout << "  " << printable(key) << ": " << printable(value) << "\n";
    return;
  }

  // The architecture: the user's options, else the file's own config; a file with neither is only a tensor
  // list. load_net checks every key and shape against the architecture, so "parameters" describes this file;
  // it runs before anything is printed, so that a refused file prints its one error line only.
  if (!config && file.metadata.count("config"))
    config = net_config_from_metadata(o.file, file.metadata.at("config"));
  std::optional<LoadedNet> loaded_net;
  if (config) loaded_net = load_net(o.file, config);
  std::cout << "file: " << o.file << "\n";
  if (config) {
    const LoadedNet& loaded = *loaded_net;
    int64_t parameters = 0;
    for (const at::Tensor& p : loaded.net->parameters()) parameters += p.numel();
    std::cout << "model_type: " << config->model_type << "\n"
              << "config: " << net_config_to_json(*config) << "\n"
              << "precond: " << loaded.precond << "\n"
              << "parameters: " << parameters << "\n";
  } else {
    std::cout << "model_type: unknown (no config in the file; give --config or --arch to check it)\n";
  }

  print_tensors(file.tensors, o.all);

  // config and precond were printed above when the file described its network.
  const bool described = config.has_value();
  std::cout << "metadata:\n";
  for (const auto& [key, value] : file.metadata)
    if (!described || (key != "config" && key != "precond"))
      std::cout << "  " << printable(key) << ": " << printable(value) << "\n";
}

}  // namespace

void add_inspect_command(CLI::App& app) {
  auto o = std::make_shared<InspectOptions>();
  CLI::App* cmd = app.add_subcommand(
      "inspect", "Show a weight file's or EDM pickle's architecture, parameter count, tensors, metadata");
  cmd->add_option("file", o->file,
                  "A .safetensors file, a torch.save (.pt) checkpoint, or an EDM network pickle (.pkl) or "
                  "training state")
      ->required();
  cmd->add_flag("--all", o->all, "List every tensor");
  add_net_options(*cmd, o->net);
  cmd->callback([o] { run_inspect(*o); });
}

}  // namespace pidistill::cli
