// fdpp tokenize: text -> token ids (or ids -> text with --decode) with a model's tokenizer.
//   fdpp tokenize -m DIR "Once upon a time"       prints: 1 9038 2501 263 931
//   fdpp tokenize -m DIR --batch texts.json       texts.json: ["a", "b"]; prints [[...],[...]]
//   fdpp tokenize -m DIR --decode 1 9038 2501     prints: Once upon
//   fdpp tokenize -m DIR --decode --batch ids.json   ids.json: [[1, 9038], [263]]; prints ["...", "..."]
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <charconv>
#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "commands.h"
#include "fdpp/status.h"
#include "tokenizer/tokenizer.h"

namespace fdpp::cli {
namespace {

struct TokenizeOptions {
  std::string model_dir;
  std::vector<std::string> args;
  std::string batch_file;
  bool no_special = false;    // encode: no BOS/EOS
  bool decode = false;
  bool show_special = false;  // decode: keep special tokens in the text
};

nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(ErrorCode::kNotFound, fmt::format("{}: cannot open --batch file", path));
  std::ostringstream buf;
  buf << in.rdbuf();
  try {
    return nlohmann::json::parse(buf.str());
  } catch (const nlohmann::json::parse_error& e) {
    throw Error(ErrorCode::kParse, fmt::format("{}: malformed JSON at byte {}: {}", path, e.byte, e.what()));
  }
}

int32_t parse_id(const std::string& s) {
  int32_t id = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), id);
  if (ec != std::errc() || end != s.data() + s.size() || id < 0) {
    throw Error(ErrorCode::kInvalidArgument, fmt::format("--decode: expected a token id, found \"{}\"", s));
  }
  return id;
}

std::vector<int32_t> ids_from_json(const nlohmann::json& j, const std::string& where) {
  if (!j.is_array()) throw Error(ErrorCode::kInvalidArgument, fmt::format("{}: expected an array of token ids", where));
  std::vector<int32_t> ids;
  for (const auto& v : j) {
    if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > INT32_MAX) {
      throw Error(ErrorCode::kInvalidArgument, fmt::format("{}: expected token ids, found {}", where, v.dump()));
    }
    ids.push_back(v.get<int32_t>());
  }
  return ids;
}

std::string join_ids(const std::vector<int32_t>& ids) {
  std::string out;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i > 0) out += ' ';
    out += std::to_string(ids[i]);
  }
  return out;
}

void run_tokenize(const TokenizeOptions& o) {
  const Tokenizer tokenizer = Tokenizer::load(o.model_dir);
  if (!o.batch_file.empty()) {
    if (!o.args.empty()) throw Error(ErrorCode::kInvalidArgument, "--batch takes no TEXT arguments");
    const nlohmann::json input = read_json(o.batch_file);
    if (!input.is_array()) {
      throw Error(ErrorCode::kInvalidArgument,
                  fmt::format("{}: expected a JSON array of {}", o.batch_file, o.decode ? "id arrays" : "strings"));
    }
    nlohmann::json out = nlohmann::json::array();
    for (size_t i = 0; i < input.size(); ++i) {
      const std::string where = fmt::format("{}: element {}", o.batch_file, i);
      if (o.decode) {
        const auto ids = ids_from_json(input[i], where);
        out.push_back(tokenizer.decode(ids, !o.show_special));
      } else {
        if (!input[i].is_string()) throw Error(ErrorCode::kInvalidArgument, fmt::format("{}: expected a string", where));
        try {
          out.push_back(tokenizer.encode(input[i].get<std::string>(), !o.no_special));
        } catch (const Error& e) {
          throw Error(e.code(), fmt::format("{}: {}", where, e.what()));
        }
      }
    }
    fmt::print("{}\n", out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
    return;
  }
  if (o.decode) {
    if (o.args.empty()) throw Error(ErrorCode::kInvalidArgument, "--decode needs token ids (or --batch FILE)");
    std::vector<int32_t> ids;
    for (const auto& a : o.args) ids.push_back(parse_id(a));
    fmt::print("{}\n", tokenizer.decode(ids, !o.show_special));
    return;
  }
  if (o.args.size() != 1) {
    throw Error(ErrorCode::kInvalidArgument,
                o.args.empty() ? std::string("tokenize needs a TEXT argument (or --batch FILE)")
                               : fmt::format("tokenize takes one TEXT argument (quote it), found {}", o.args.size()));
  }
  fmt::print("{}\n", join_ids(tokenizer.encode(o.args[0], !o.no_special)));
}

}  // namespace

void add_tokenize_command(CLI::App& app) {
  auto opts = std::make_shared<TokenizeOptions>();
  CLI::App* cmd = app.add_subcommand("tokenize", "Encode text to token ids with a model's tokenizer (or decode ids)");
  cmd->add_option("-m,--model", opts->model_dir, "Model directory holding tokenizer.json (and tokenizer_config.json)")
      ->required();
  cmd->add_option("text", opts->args, "Text to encode; with --decode, the token ids");
  cmd->add_option("--batch", opts->batch_file,
                  "JSON file with an array of strings (with --decode: of id arrays); prints a JSON array of results");
  cmd->add_flag("--no-special", opts->no_special, "Do not add BOS/EOS (add_special_tokens=False)");
  cmd->add_flag("--decode", opts->decode, "Decode token ids to text instead");
  cmd->add_flag("--show-special", opts->show_special, "With --decode: keep special tokens in the text");
  cmd->callback([opts] { run_tokenize(*opts); });
}

}  // namespace fdpp::cli
