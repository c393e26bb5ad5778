// pidistill: distil EDM diffusion models into one-step generators (Physics Informed Distillation).
#include "cli/commands.h"
#include "pidistill/util/error.h"

#include <iostream>

int main(int argc, char** argv) {
  CLI::App app{"pidistill: one-step image generators from EDM diffusion models by Physics Informed Distillation"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "pidistill 0.1.0");
  pidistill::cli::add_inspect_command(app);
  pidistill::cli::add_convert_command(app);
  pidistill::cli::add_denoise_command(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
