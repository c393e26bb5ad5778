// `pidistill inspect FILE`: what a weight file holds, without running it.
#include "cli/cli_util.h"
#include "cli/commands.h"
#include "pidistill/nets/net_file.h"

#include <ATen/ATen.h>

#include <iostream>
#include <map>
#include <memory>

namespace pidistill::cli {
namespace {

struct InspectOptions {
  std::string file;  // a .safetensors file or a torch.save zip (.pt)
  NetOptions net;    // for files that do not describe their network
  bool all = false;  // list every tensor, not just the first and last
};

void print_tensor_line(const std::pair<std::string, at::Tensor>& named) {
  std::cout << "  " << named.first << " " << dtype_name(named.second) << " " << shape_string(named.second)
            << "\n";
}

void run_inspect(const InspectOptions& o) {
  std::optional<NetConfig> config = resolve_net_config(o.net);  // first: bad options fail before any output
  const TensorFile file = read_any_tensor_file(o.file);
  std::cout << "file: " << o.file << "\n";

  int64_t elements = 0;
  std::map<std::string, int> dtype_counts;
  for (const auto& [name, tensor] : file.tensors) {
    elements += tensor.numel();
    ++dtype_counts[dtype_name(tensor)];
  }

  // The architecture: the user's options, else the file's own config; a file with neither is only a tensor
  // list.
  if (!config && file.metadata.count("config")) config = net_config_from_json(file.metadata.at("config"));
  if (config) {
    // load_net checks every key and shape against the architecture, so "parameters" describes this file.
    const LoadedNet loaded = load_net(o.file, config);
    int64_t parameters = 0;
    for (const at::Tensor& p : loaded.net->parameters()) parameters += p.numel();
    std::cout << "model_type: " << config->model_type << "\n"
              << "config: " << net_config_to_json(*config) << "\n"
              << "precond: " << loaded.precond << "\n"
              << "parameters: " << parameters << "\n";
  } else {
    std::cout << "model_type: unknown (no config in the file; give --config or --arch to check it)\n";
  }

  std::cout << "tensors: " << file.tensors.size() << " (" << elements << " elements)\n";
  std::cout << "dtypes:";
  for (const auto& [dtype, count] : dtype_counts) std::cout << " " << dtype << " x" << count;
  std::cout << "\n";

  std::cout << "keys:\n";
  const size_t n = file.tensors.size();
  const size_t shown = 3;  // at each end
  for (size_t i = 0; i < n; ++i) {
    if (o.all || i < shown || i + shown >= n) {
      print_tensor_line(file.tensors[i]);
    } else if (i == shown) {
      std::cout << "  ... " << n - 2 * shown << " more (--all lists them)\n";
    }
  }

  // config and precond were printed above when the file described its network.
  const bool described = config.has_value();
  std::cout << "metadata:\n";
  for (const auto& [key, value] : file.metadata)
    if (!described || (key != "config" && key != "precond"))
      std::cout << "  " << key << ": " << value << "\n";
}

}  // namespace

void add_inspect_command(CLI::App& app) {
  auto o = std::make_shared<InspectOptions>();
  CLI::App* cmd =
      app.add_subcommand("inspect", "Show a weight file's architecture, parameter count, tensors, metadata");
  cmd->add_option("file", o->file, "A .safetensors file or a torch.save (.pt) checkpoint")->required();
  cmd->add_flag("--all", o->all, "List every tensor");
  add_net_options(*cmd, o->net);
  cmd->callback([o] { run_inspect(*o); });
}

}  // namespace pidistill::cli
