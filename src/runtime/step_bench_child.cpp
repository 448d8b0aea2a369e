#include "runtime/step_bench_child.h"

#include <fmt/format.h>
#include <unistd.h>

#include <cstdio>
#include <nlohmann/json.hpp>

#include "core/json_file.h"
#include "fdpp/status.h"

namespace fdpp {
namespace {

// A word for /bin/sh: single-quoted, with each ' written as '\''.
std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// The end of the child's error output (the shell creates the file before the child runs).
std::string read_tail(const std::filesystem::path& path, size_t max_chars) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return {};
  const std::string text = read_text_file(path);
  return text.size() > max_chars ? "..." + text.substr(text.size() - max_chars) : text;
}

}  // namespace

std::map<int64_t, double> child_decode_step_ms(const StepBenchTarget& target, const std::filesystem::path& table,
                                               const std::vector<int64_t>& batches) {
  if (target.model_dir.empty() == target.shape.empty())
    throw Error(ErrorCode::kInvalidArgument, "step bench: give exactly one of a model directory and a shape name");
  if (batches.empty()) return {};
  std::string batch_list;
  for (int64_t b : batches) {
    if (!batch_list.empty()) batch_list += ',';
    batch_list += std::to_string(b);
  }
  // --prefill 16: the bench times a prefill case first; the smallest one costs least.
  std::string command = fmt::format("{} bench --json --backend {} --dtype {} --prefill 16 --batch {} --context {} "
                                    "--steps {}",
                                    shell_quote(target.fdpp_binary.string()), shell_quote(target.backend),
                                    shell_quote(target.dtype), batch_list, target.context, target.steps);
  command += target.model_dir.empty() ? " --shape " + shell_quote(target.shape)
                                      : " -m " + shell_quote(target.model_dir);
  const std::filesystem::path err_path =
      std::filesystem::temp_directory_path() / fmt::format("fdpp-step-bench-{}.err", static_cast<long>(getpid()));
  const std::string full = "FDPP_LINEAR_TABLE=" + shell_quote(table.string()) + " " + command + " 2>" +
                           shell_quote(err_path.string());

  std::FILE* pipe = popen(full.c_str(), "r");
  if (pipe == nullptr) throw Error(ErrorCode::kIo, "step bench: could not start: " + command);
  std::string out;
  char buf[4096];
  for (size_t n; (n = std::fread(buf, 1, sizeof buf, pipe)) > 0;) out.append(buf, n);
  const int status = pclose(pipe);
  const std::string err = read_tail(err_path, 600);
  std::error_code ignored;
  std::filesystem::remove(err_path, ignored);
  if (status != 0)
    throw Error(ErrorCode::kInternal, fmt::format("step bench: `{}` with FDPP_LINEAR_TABLE={} failed (status {}): {}",
                                                  command, table.string(), status, err));
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(out);
  } catch (const nlohmann::json::exception& e) {
    throw Error(ErrorCode::kParse, fmt::format("step bench: `{}` printed no JSON ({}): {}", command, e.what(),
                                               out.substr(0, 200)));
  }
  std::map<int64_t, double> ms;
  for (const auto& row : j.value("rows", nlohmann::json::array()))
    if (row.value("phase", "") == "decode" && !row.contains("skipped"))
      ms[row.at("batch").get<int64_t>()] = row.at("ms").get<double>();
  return ms;
}

}  // namespace fdpp
