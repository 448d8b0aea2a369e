// fdpp: the command-line front end. Subcommands: generate, tokenize, serve.
#include <fmt/format.h>

#include <cstdio>
#include <exception>

#include "commands.h"
#include "fdpp/status.h"

int main(int argc, char** argv) {
  CLI::App app{"fdpp: FlashDecoding++ LLM inference engine"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "fdpp 0.1.0");
  fdpp::cli::add_generate_command(app);
  fdpp::cli::add_tokenize_command(app);
  fdpp::cli::add_serve_command(app);
  fdpp::cli::add_calibrate_command(app);
  fdpp::cli::add_bench_command(app);
  fdpp::cli::add_tune_command(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const fdpp::Error& e) {
    fmt::print(stderr, "fdpp: error: {}\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    fmt::print(stderr, "fdpp: internal error: {}\n", e.what());
    return 2;
  }
  return 0;
}
