// Each subcommand of the fdpp CLI lives in its own file and registers itself here. A command's
// callback throws fdpp::Error for anything the user got wrong; main() prints it and exits 1.
#pragma once

#include <CLI/CLI.hpp>

namespace fdpp::cli {

void add_generate_command(CLI::App& app);  // cmd_generate.cpp
void add_tokenize_command(CLI::App& app);  // cmd_tokenize.cpp
void add_serve_command(CLI::App& app);     // cmd_serve.cpp
void add_calibrate_command(CLI::App& app); // cmd_calibrate.cpp
void add_bench_command(CLI::App& app);     // cmd_bench.cpp
void add_tune_command(CLI::App& app);      // cmd_tune.cpp

}  // namespace fdpp::cli
