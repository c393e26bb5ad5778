// `pidistill denoise`: one evaluation of a network on tensors from a file, D(x, sigma) or the raw F.
// For checking a network against reference numbers and for scripting; sampling is `generate`'s job.
#include "cli/cli_util.h"
#include "cli/commands.h"
#include "pidistill/edm/precond.h"
#include "pidistill/nets/net_file.h"
#include "pidistill/pid/student_file.h"
#include "pidistill/util/error.h"

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>  // at::NoGradGuard; ATen.h does not bring it in LibTorch 2.x

#include <iostream>
#include <memory>

namespace pidistill::cli {
namespace {

struct DenoiseOptions {
  std::string net;      // the network file
  std::string in;       // safetensors with x, sigma [, class_labels, augment_labels] (or x_in, noise_labels)
  std::string out;      // safetensors to write D (or F with --raw)
  std::string precond;  // edm | vp | ve; empty = the net file's precond metadata, else edm
  bool f64 = false;     // compute and write in float64 instead of float32
  bool raw = false;     // evaluate the raw network F(x_in, noise_labels) instead of D(x, sigma)
  bool student =
      false;        // evaluate the PID student x_theta(z, t) (a teacher file: the student at initialisation)
  NetOptions arch;  // the architecture, when the net file does not describe it
};

// The input tensor `name` in the compute dtype, or an undefined tensor when optional and absent.
at::Tensor input(const TensorFile& file, const std::string& name, at::ScalarType dtype,
                 bool required = true) {
  if (!required && !file.has(name)) return {};
  return file.get(name).to(dtype);
}

// Shapes the network cannot take fail here with the tensor's name, not deep inside a convolution.
void check_inputs(const TensorFile& file, const NetConfig& c, const std::string& x_name, const at::Tensor& x,
                  const at::Tensor& labels, const at::Tensor& augment_labels) {
  if (x.dim() != 4 || x.size(1) != c.img_channels || x.size(2) != c.img_resolution ||
      x.size(3) != c.img_resolution)
    fail(file.path, "tensor '" + x_name + "' has shape " + shape_string(x) + "; the network takes [N, " +
                        std::to_string(c.img_channels) + ", " + std::to_string(c.img_resolution) + ", " +
                        std::to_string(c.img_resolution) + "]");
  if (labels.defined() && (c.label_dim == 0 || labels.dim() != 2 || labels.size(1) != c.label_dim))
    fail(file.path, "tensor 'class_labels' has shape " + shape_string(labels) + "; the network takes " +
                        (c.label_dim ? "[N, " + std::to_string(c.label_dim) + "]" : "no class labels"));
  if (augment_labels.defined() &&
      (c.augment_dim == 0 || augment_labels.dim() != 2 || augment_labels.size(1) != c.augment_dim))
    fail(file.path, "tensor 'augment_labels' has shape " + shape_string(augment_labels) +
                        "; the network takes " +
                        (c.augment_dim ? "[N, " + std::to_string(c.augment_dim) + "]" : "no augment labels"));
}

void run_denoise(const DenoiseOptions& o) {
  LoadedNet loaded = load_net(o.net, resolve_net_config(o.arch));
  const std::string precond_name = o.precond.empty() ? loaded.precond : o.precond;
  const PrecondType precond_type = precond_from_string(precond_name);
  const at::ScalarType dtype = o.f64 ? at::kDouble : at::kFloat;
  loaded.net->to(dtype);
  const TensorFile in = read_safetensors(o.in);
  const at::Tensor class_labels = input(in, "class_labels", dtype, /*required=*/false);  // [N, label_dim]
  const at::Tensor augment_labels =
      input(in, "augment_labels", dtype, /*required=*/false);  // [N, augment_dim]

  at::NoGradGuard no_grad;
  NamedTensors out;
  if (o.student) {
    const at::Tensor z = input(in, "z", dtype);  // [N, C, H, W] standard normal
    const at::Tensor t = input(in, "t", dtype);  // [N], [1] or []
    check_inputs(in, loaded.config, "z", z, class_labels, augment_labels);
    out.emplace_back("x_theta", student_from(loaded)(z, t, class_labels));
  } else if (o.raw) {
    const at::Tensor x_in = input(in, "x_in", dtype);                  // [N, C, H, W]
    const at::Tensor noise_labels = input(in, "noise_labels", dtype);  // [N] or [1]
    check_inputs(in, loaded.config, "x_in", x_in, class_labels, augment_labels);
    out.emplace_back("F", loaded.net->forward(x_in, noise_labels, class_labels, augment_labels));
  } else {
    const at::Tensor x = input(in, "x", dtype);          // [N, C, H, W]
    const at::Tensor sigma = input(in, "sigma", dtype);  // [N], [1] or []
    check_inputs(in, loaded.config, "x", x, class_labels, augment_labels);
    // Why: D at sigma <= 0, NaN or inf is all NaN (c_in, c_noise divide by or log sigma); say so instead.
    if (sigma.numel() == 0 || !(sigma > 0).all().item<bool>() || !at::isfinite(sigma).all().item<bool>())
      fail(o.in, "tensor 'sigma' must hold finite noise levels > 0");
    Precond precond(loaded.net, precond_type);
    set_precond_constants(precond, loaded.metadata);  // e.g. an EDM pickle's beta_d, sigma_data
    out.emplace_back("D", precond.forward(x, sigma, class_labels, augment_labels).D);
  }
  write_safetensors(o.out, out,
                    {{"net", o.net},
                     {"input", o.in},
                     {"precond", o.student ? "pid student"
                                 : o.raw   ? "none (raw F)"
                                           : precond_name},
                     {"dtype", o.f64 ? "F64" : "F32"}});
  std::cout << "wrote " << o.out << " (" << out[0].first << " " << shape_string(out[0].second) << ", "
            << (o.f64 ? "F64" : "F32") << ")\n";
}

}  // namespace

void add_denoise_command(CLI::App& app) {
  auto o = std::make_shared<DenoiseOptions>();
  CLI::App* cmd = app.add_subcommand("denoise",
                                     "Evaluate D(x, sigma) (or the raw network with --raw) on tensors "
                                     "from a safetensors file");
  cmd->add_option("--net", o->net, "Network file (.safetensors or .pt)")->required();
  cmd->add_option("--in", o->in,
                  "Input .safetensors: x, sigma [, class_labels, augment_labels]; with --raw: "
                  "x_in, noise_labels [, class_labels, augment_labels]")
      ->required();
  cmd->add_option("--out", o->out, "Output .safetensors: D (or F with --raw)")->required();
  cmd->add_option("--precond", o->precond,
                  "Preconditioning: edm | vp | ve (default: the net file's, else edm)");
  cmd->add_flag("--f64", o->f64, "Compute and write in float64 (default float32)");
  cmd->add_flag("--raw", o->raw, "Evaluate the raw network F(x_in, noise_labels) instead of D(x, sigma)");
  cmd->add_flag(
         "--student", o->student,
         "Evaluate the PID student x_theta(z, t [, class_labels]) -> x_theta; a teacher file gives the "
         "student at initialisation")
      ->excludes("--raw");
  add_net_options(*cmd, o->arch);
  cmd->callback([o] { run_denoise(*o); });
}

}  // namespace pidistill::cli
