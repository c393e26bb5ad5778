// pidistill: distil EDM diffusion models into one-step generators (Physics Informed Distillation).
#include "cli/commands.h"
#include "pidistill/nets/winograd_conv.h"
#include "pidistill/util/build_info.h"
#include "pidistill/util/error.h"
#include "pidistill/util/threads.h"

#include <iostream>
#include <string>

// Library errors may carry a backtrace after the first line (c10::Error does); the user needs the sentence,
// as printable text.
static std::string first_line(const std::string& text) {
  return pidistill::printable(text.substr(0, text.find('\n')));
}

int main(int argc, char** argv) {
  CLI::App app{
      "pidistill: one-step image generators from EDM diffusion models by Physics Informed Distillation"};
  app.require_subcommand(1);
  app.fallthrough();  // so --threads may also follow the subcommand name
  app.set_version_flag("--version", [] { return "pidistill 0.1.0 (" + pidistill::build_info() + ")"; });
  pidistill::set_threads();  // all cores (or OMP_NUM_THREADS) unless --threads says otherwise
  app.add_option_function<int>(
      "--threads", [](int n) { pidistill::set_threads(n); },
      "CPU threads for tensor work (default: OMP_NUM_THREADS, else all cores)");
  app.add_option_function<std::string>(
         "--conv", [](const std::string& name) { pidistill::set_conv_algorithm(pidistill::parse_conv_algorithm(name)); },
         "3x3 convolutions on CPU in float32: direct (LibTorch's), winograd-f4x4 (oneDNN's F(4x4,3x3), AVX-512 "
         "CPUs; images of 16x16 or more), winograd-f2x2 (ours, any CPU; layers of 128 channels or more), or winograd "
         "(f4x4 where the CPU has it, else f2x2). Winograd does fewer flops; its rounding differs by ~1e-6")
      ->default_str("direct");
  pidistill::cli::add_inspect_command(app);
  pidistill::cli::add_convert_command(app);
  pidistill::cli::add_export_command(app);
  pidistill::cli::add_denoise_command(app);
  pidistill::cli::add_train_command(app);
  pidistill::cli::add_generate_command(app);
  pidistill::cli::add_distill_command(app);
  pidistill::cli::add_compare_command(app);
  pidistill::cli::add_ref_command(app);
  pidistill::cli::add_fid_command(app);
  pidistill::cli::add_train_classifier_command(app);
  pidistill::cli::add_trajectory_command(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help, --version
    std::cerr << "error: " << first_line(e.what()) << " (see pidistill --help)\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "error: " << first_line(e.what()) << "\n";
    return 1;
  }
  return 0;
}
