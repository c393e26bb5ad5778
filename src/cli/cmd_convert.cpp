// `pidistill convert IN OUT.safetensors`: any supported checkpoint (EDM's .pkl included, its architecture
// read from the file) to a self-describing safetensors file; with --student, PID's released student
// checkpoints to our student file.
#include "cli/cli_util.h"
#include "cli/commands.h"
#include "pidistill/edm/precond.h"
#include "pidistill/nets/net_file.h"
#include "pidistill/pid/pid_release.h"
#include "pidistill/pid/student_file.h"

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
  bool student = false;  // --student: IN is a PID student checkpoint (a state dict of PID's SongUNet)
};

// PID distils EDM-preconditioned teachers; the student file records its T, sigma_min and sigma_data.
void run_convert_student(const ConvertOptions& o) {
  const std::string precond = o.precond.empty() ? "edm" : o.precond;
  precond_from_string(precond);
  const Student student = load_pid_student(o.in, resolve_net_config(o.net));
  save_student(o.out, student, precond,
               {{"converted_from", std::filesystem::path(o.in).filename().string()},
                {"pid_release", "1"}});
  std::cout << "wrote " << o.out << " (PID student, " << student.F->config.model_type
            << ", T=" << student.constants.T << ", sigma_min=" << student.constants.sigma_min
            << ", one call per image)\n";
}

void run_convert(const ConvertOptions& o) {
  if (o.student) return run_convert_student(o);
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
  cmd->add_flag("--student", o->student,
               "IN is a PID student checkpoint (a state dict of PID's SongUNet, 'module.' prefixes and a "
               "'state_dict'/'model' wrapper allowed; give --arch/--config): write a student file "
               "(T=80, sigma_min=0.002) that generate runs in one call");
  add_net_options(*cmd, o->net);
  cmd->callback([o] { run_convert(*o); });
}

}  // namespace pidistill::cli
