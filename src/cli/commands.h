// Each CLI subcommand lives in its own cmd_<name>.cpp and registers itself on the app here.
#pragma once
#include <CLI/CLI.hpp>

namespace pidistill::cli {

// Option check: a finite number > 0 (CLI::PositiveNumber lets "inf" through).
inline const CLI::Validator kFinitePositive(
    [](std::string& text) -> std::string {
      try {
        double v = std::stod(text);
        return v > 0 && v < 1e300 ? "" : "must be a finite number > 0, got " + text;
      } catch (const std::exception&) {
        return "must be a number, got '" + text + "'";
      }
    },
    "FINITE > 0");

// Each adds a subcommand whose callback does the work; errors are thrown as pidistill::Error.
void add_inspect_command(CLI::App& app);
void add_convert_command(CLI::App& app);
void add_export_command(CLI::App& app);  // cmd_export.cpp: a torch.save state dict for PyTorch
void add_denoise_command(CLI::App& app);
void add_train_command(CLI::App& app);     // cmd_train.cpp: EDM training
void add_generate_command(CLI::App& app);  // cmd_generate.cpp: EDM sampling
void add_distill_command(CLI::App& app);
void add_compare_command(CLI::App& app);           // cmd_compare.cpp: teacher vs PID student picture
void add_ref_command(CLI::App& app);               // cmd_fid.cpp: reference statistics of a dataset
void add_fid_command(CLI::App& app);               // cmd_fid.cpp: FD / IS / precision-recall
void add_train_classifier_command(CLI::App& app);  // the FD-FMNIST feature network
void add_trajectory_command(CLI::App& app);        // student vs teacher along the ODE trajectory

}  // namespace pidistill::cli
