// `pidistill convert IN OUT.safetensors`: any supported checkpoint (EDM's .pkl included, its architecture
// read from the file) to a self-describing safetensors file.
#include "cli/cli_util.h"
#include "cli/commands.h"
#include "pidistill/edm/precond.h"
#include "pidistill/nets/net_file.h"

#include <filesystem>
#include <iostream>
#include <memory>

namespace pidistill::cli {
namespace {

struct ConvertOptions {
  std::string in;       // any file load_net reads
  std::string out;      // the safetensors file to write
  NetOptions net;       // the architecture, when IN does not describe it (EDM pickles do)
  std::string precond;  // edm | vp | ve; empty = IN's precond metadata, else edm
};

void run_convert(const ConvertOptions& o) {
  LoadedNet loaded = load_net(o.in, resolve_net_config(o.net));
  const std::string precond = o.precond.empty() ? loaded.precond : o.precond;
  precond_from_string(precond);  // rejects a bad value before anything is written
  std::map<std::string, std::string> extra = loaded.metadata;
  extra["converted_from"] = std::filesystem::path(o.in).filename().string();
  save_net(o.out, *loaded.net, precond, extra);
  std::cout << "wrote " << o.out << " (" << loaded.config.model_type << ", precond " << precond << ")\n";
}

}  // namespace

void add_convert_command(CLI::App& app) {
  auto o = std::make_shared<ConvertOptions>();
  CLI::App* cmd = app.add_subcommand("convert",
                                     "Convert a checkpoint (EDM .pkl, .pt or .safetensors) into a "
                                     "self-describing safetensors file (weights, config, precond)");
  cmd->add_option(
         "in", o->in,
         "Input checkpoint: EDM network pickle (.pkl) or training state, torch.save (.pt) state dict, "
         "or .safetensors")
      ->required();
  cmd->add_option("out", o->out, "Output .safetensors file (written atomically)")->required();
  cmd->add_option("--precond", o->precond,
                  "Preconditioning to record: edm | vp | ve (default: the input's, else edm)");
  add_net_options(*cmd, o->net);
  cmd->callback([o] { run_convert(*o); });
}

}  // namespace pidistill::cli
