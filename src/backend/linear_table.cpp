#include "backend/linear_table.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <limits>

#include "core/json_file.h"
#include "fdpp/status.h"

namespace fdpp {
namespace {

using nlohmann::json;

constexpr const char* kFormat = "fdpp-linear-table";
constexpr int kVersion = 1;

int64_t positive_field(const json& e, const char* key, const std::string& where, bool allow_zero) {
  if (!e.contains(key) || !e[key].is_number_integer())
    throw Error(ErrorCode::kParse, fmt::format("{}: field '{}': expected an integer, found {}", where, key,
                                               e.contains(key) ? show_json(e[key]) : "nothing"));
  const auto v = e[key].get<int64_t>();
  if (v < 0 || (v == 0 && !allow_zero))
    throw Error(ErrorCode::kParse, fmt::format("{}: field '{}': expected {} integer, found {}", where, key,
                                               allow_zero ? "a non-negative" : "a positive", v));
  return v;
}

std::string string_field(const json& e, const char* key, const std::string& where) {
  if (!e.contains(key) || !e[key].is_string())
    throw Error(ErrorCode::kParse, fmt::format("{}: field '{}': expected a string, found {}", where, key,
                                               e.contains(key) ? show_json(e[key]) : "nothing"));
  return e[key].get<std::string>();
}

}  // namespace

const char* linear_impl_name(LinearImpl impl) {
  switch (impl) {
    case LinearImpl::kGemv: return "gemv";
    case LinearImpl::kFlatGemm: return "flat_gemm";
    case LinearImpl::kCublasLt: return "cublaslt";
  }
  return "?";
}

LinearInflection builtin_linear_inflection(int64_t n, int64_t k, bool gated) {
  if (gated) return kDefaultGatedLinearInflection;
  for (const BuiltinShapeInflection& e : kBuiltinShapeInflections)
    if (e.n == n && e.k == k) return e.at;
  return kDefaultLinearInflection;
}

LinearImpl choose_linear_impl(const LinearInflection& at, int64_t m) {
  if (m <= at.m1) return LinearImpl::kGemv;
  if (m <= at.m2) return LinearImpl::kFlatGemm;
  return LinearImpl::kCublasLt;
}

std::optional<LinearInflection> LinearTable::find(const LinearTableKey& key) const {
  const auto it = entries_.find(key);
  if (it == entries_.end()) return std::nullopt;
  return it->second;
}

LinearTable LinearTable::load(const std::filesystem::path& path) {
  const json root = read_json_file(path);
  const std::string file = path.string();
  if (!root.is_object() || root.value("format", "") != kFormat)
    throw Error(ErrorCode::kParse, fmt::format("{}: field 'format': expected \"{}\", found {}", file, kFormat,
                                               root.is_object() && root.contains("format") ? show_json(root["format"])
                                                                                           : "nothing"));
  if (root.value("version", 0) != kVersion)
    throw Error(ErrorCode::kParse, fmt::format("{}: field 'version': expected {}, found {}", file, kVersion,
                                               root.contains("version") ? show_json(root["version"]) : "nothing"));
  if (!root.contains("entries") || !root["entries"].is_array())
    throw Error(ErrorCode::kParse, fmt::format("{}: field 'entries': expected an array", file));
  LinearTable table;
  size_t i = 0;
  for (const json& e : root["entries"]) {
    const std::string where = fmt::format("{}: entries[{}]", file, i++);
    if (!e.is_object()) throw Error(ErrorCode::kParse, fmt::format("{}: expected an object, found {}", where, show_json(e)));
    LinearTableKey key;
    key.gpu = string_field(e, "gpu", where);
    const std::string dtype = string_field(e, "dtype", where);
    const auto dt = parse_dtype(dtype);
    if (!dt || (*dt != DType::kF16 && *dt != DType::kBF16))
      throw Error(ErrorCode::kParse, fmt::format("{}: field 'dtype': expected \"F16\" or \"BF16\", found \"{}\"", where, dtype));
    key.dtype = *dt;
    key.n = positive_field(e, "n", where, false);
    key.k = positive_field(e, "k", where, false);
    LinearInflection at;
    at.m1 = positive_field(e, "m1", where, true);
    at.m2 = positive_field(e, "m2", where, true);
    if (at.m1 > at.m2)
      throw Error(ErrorCode::kParse, fmt::format("{}: expected m1 <= m2, found m1 {} > m2 {}", where, at.m1, at.m2));
    table.set(key, at);
  }
  return table;
}

void LinearTable::save(const std::filesystem::path& path) const {
  json entries = json::array();
  for (const auto& [key, at] : entries_)
    entries.push_back({{"gpu", key.gpu}, {"dtype", dtype_name(key.dtype)}, {"n", key.n}, {"k", key.k},
                       {"m1", at.m1}, {"m2", at.m2}});
  const json root{{"format", kFormat}, {"version", kVersion}, {"entries", entries}};
  std::error_code ec;
  if (path.has_parent_path()) std::filesystem::create_directories(path.parent_path(), ec);
  // Write a sibling and rename it, so a reader never sees half a table.
  const std::filesystem::path tmp = path.string() + ".tmp";
  {
    std::ofstream out(tmp);
    out << root.dump(1) << "\n";
    if (!out) throw Error(ErrorCode::kIo, fmt::format("{}: cannot write the linear table", tmp.string()));
  }
  std::filesystem::rename(tmp, path, ec);
  if (ec) throw Error(ErrorCode::kIo, fmt::format("{}: cannot write the linear table: {}", path.string(), ec.message()));
}

std::filesystem::path default_linear_table_path() {
  if (const char* p = std::getenv("FDPP_LINEAR_TABLE"); p != nullptr && *p != '\0') return p;
  if (const char* p = std::getenv("XDG_CACHE_HOME"); p != nullptr && *p != '\0')
    return std::filesystem::path(p) / "fdpp" / "linear_table.json";
  const char* home = std::getenv("HOME");
  return std::filesystem::path(home != nullptr ? home : ".") / ".cache" / "fdpp" / "linear_table.json";
}

LinearInflection inflection_from_timings(const std::vector<LinearTiming>& timings) {
  const size_t n = timings.size();
  if (n == 0) return kDefaultLinearInflection;
  constexpr double kNever = std::numeric_limits<double>::infinity();
  // Prefix sums of each implementation's relative loss r = t / best - 1 (infinite where it cannot run).
  std::vector<double> gemv(n + 1, 0), flat(n + 1, 0), lt(n + 1, 0);
  for (size_t i = 0; i < n; ++i) {
    const LinearTiming& t = timings[i];
    double best = kNever;
    for (double v : {t.gemv_us, t.flat_us, t.cublas_us})
      if (v > 0) best = std::min(best, v);
    auto loss = [&](double v) { return v > 0 ? v / best - 1.0 : kNever; };
    gemv[i + 1] = gemv[i] + loss(t.gemv_us);
    flat[i + 1] = flat[i] + loss(t.flat_us);
    lt[i + 1] = lt[i] + loss(t.cublas_us);
  }
  // i1 = rows served by the GEMV, i2 = rows served by GEMV or flat GEMM (i1 <= i2 <= n).
  double best_cost = kNever;
  size_t best1 = 0, best2 = 0;
  for (size_t i1 = 0; i1 <= n; ++i1) {
    for (size_t i2 = i1; i2 <= n; ++i2) {
      const double cost = gemv[i1] + (flat[i2] - flat[i1]) + (lt[n] - lt[i2]);
      if (cost < best_cost) {
        best_cost = cost;
        best1 = i1;
        best2 = i2;
      }
    }
  }
  LinearInflection at;
  at.m1 = best1 == 0 ? 0 : timings[best1 - 1].m;
  at.m2 = best2 == 0 ? 0 : timings[best2 - 1].m;
  return at;
}

std::vector<int64_t> batches_where_choices_differ(const LinearInflection& a, const LinearInflection& b,
                                                  int64_t max_m) {
  std::vector<int64_t> out;
  for (int64_t m = 1; m <= max_m; ++m)
    if (choose_linear_impl(a, m) != choose_linear_impl(b, m)) out.push_back(m);
  return out;
}

LinearInflection inflection_from_step_times(const LinearInflection& tuned, const LinearInflection& current,
                                            const std::vector<StepComparison>& steps, double noise) {
  // Each M becomes a sweep point where the implementation the steps favour costs 1 and the other
  // compared one costs its step ratio; the third is never taken (a finite cost: the prefix sums
  // of inflection_from_timings must not subtract infinities). It then finds the (m1, m2) closest
  // to those choices.
  constexpr double kNeverTaken = 1e9;
  std::vector<LinearTiming> timings;
  for (int64_t m = 1; m <= kSmallMKernelsMaxM; ++m) {
    LinearTiming t{m, kNeverTaken, kNeverTaken, kNeverTaken};
    auto set = [&t](LinearImpl impl, double v) {
      (impl == LinearImpl::kGemv ? t.gemv_us : impl == LinearImpl::kFlatGemm ? t.flat_us : t.cublas_us) = v;
    };
    const LinearImpl keep = choose_linear_impl(current, m), other = choose_linear_impl(tuned, m);
    set(keep, 1.0);
    if (other != keep) {
      const auto it = std::find_if(steps.begin(), steps.end(), [m](const StepComparison& s) { return s.batch == m; });
      const bool timed = it != steps.end() && it->tuned_ms > 0 && it->current_ms > 0;
      if (timed && it->tuned_ms < it->current_ms * (1.0 - noise)) {
        set(keep, it->current_ms / it->tuned_ms);
        set(other, 1.0);
      } else {
        set(other, timed ? std::max(it->tuned_ms / it->current_ms, 1.0 + noise) : 1.0 + noise);
      }
    }
    timings.push_back(t);
  }
  return inflection_from_timings(timings);
}

}  // namespace fdpp
