// Decode step times measured by a child `fdpp bench --json` process. `fdpp tune`'s step check
// (cmd_tune.cpp) compares linear tables this way: the CUDA backend reads its table once at start,
// so each candidate table gets a fresh process, exactly as a user's run would see it.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace fdpp {

struct StepBenchTarget {
  std::filesystem::path fdpp_binary;  // the fdpp executable to run
  std::string model_dir;              // a model directory, or else
  std::string shape;                  // a named shape with random weights ("llama2-7b")
  std::string backend = "cuda";
  std::string dtype = "auto";
  int64_t context = 1024;             // KV positions each decode row attends over
  int64_t steps = 32;                 // timed decode steps per batch
};

// Runs `FDPP_LINEAR_TABLE=<table> fdpp bench --json` for the target at these batch sizes and
// returns batch -> ms per decode step (batches the bench skipped are absent). Throws fdpp::Error
// naming the command and quoting its error output when the child fails or prints no JSON.
std::map<int64_t, double> child_decode_step_ms(const StepBenchTarget& target, const std::filesystem::path& table,
                                               const std::vector<int64_t>& batches);

}  // namespace fdpp
