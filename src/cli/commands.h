// Each CLI subcommand lives in its own cmd_<name>.cpp and registers itself on the app here.
#pragma once
#include <CLI/CLI.hpp>

namespace pidistill::cli {

// Each adds a subcommand whose callback does the work; errors are thrown as pidistill::Error.
void add_inspect_command(CLI::App& app);
void add_convert_command(CLI::App& app);
void add_denoise_command(CLI::App& app);
void add_train_command(CLI::App& app);     // cmd_train.cpp: EDM training
void add_generate_command(CLI::App& app);  // cmd_generate.cpp: EDM sampling
void add_distill_command(CLI::App& app);
void add_compare_command(CLI::App& app);  // cmd_compare.cpp: teacher vs PID student picture

}  // namespace pidistill::cli
