// `pidistill export NET OUT.pt`: a network file as a torch.save state dict that EDM's or PID's Python code
// loads, with OUT.json holding the constructor kwargs.
#include "cli/cli_util.h"
#include "cli/commands.h"
#include "pidistill/nets/net_file.h"
#include "pidistill/pid/pytorch_export.h"

#include <iostream>
#include <memory>

namespace pidistill::cli {
namespace {

struct ExportOptions {
  std::string net;             // any file load_net reads
  std::string out;             // the torch.save file to write; OUT.json beside it
  std::string format = "edm";  // edm: EDMPrecond.state_dict() keys ('model.'); pid: the network's keys
  NetOptions arch;             // the architecture, when NET does not describe it
};

void run_export(const ExportOptions& o) {
  const LoadedNet loaded = load_net(o.net, resolve_net_config(o.arch));
  const PyTorchExport exported = pytorch_export(loaded, o.format, o.net);
  write_pytorch_export(o.out, exported);
  std::cout << "wrote " << o.out << " (" << exported.state.size() << " tensors, " << o.format << " keys) and "
            << export_json_path(o.out) << "\n";
}

}  // namespace

void add_export_command(CLI::App& app) {
  auto o = std::make_shared<ExportOptions>();
  CLI::App* cmd = app.add_subcommand(
      "export", "Write a network file as a PyTorch state dict (torch.save zip) plus OUT.json of its kwargs");
  cmd->add_option("net", o->net, "Network file: safetensors (teacher or PID student), EDM .pkl, .pt")
      ->required();
  cmd->add_option("out", o->out, "Output .pt file (written atomically; OUT.json beside it)")->required();
  cmd->add_option("--format", o->format,
                  "Key names: edm = EDMPrecond.state_dict() ('model.' prefix); pid = the network's own "
                  "(EDM's SongUNet/DhariwalUNet, PID's SongUNet)")
      ->check(CLI::IsMember({"edm", "pid"}))
      ->capture_default_str();
  add_net_options(*cmd, o->arch);
  cmd->callback([o] { run_export(*o); });
}

}  // namespace pidistill::cli
