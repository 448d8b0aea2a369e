#include "runtime/softmax_calibration.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <fstream>

#include "core/json_file.h"
#include "fdpp/status.h"

namespace fdpp {
namespace {

using nlohmann::json;

json to_json(const LayerSoftmaxStats& s) {
  return json{{"phi", s.range.phi},       {"lo", s.range.lo},   {"hi", s.range.hi},
              {"observed_low", s.observed_low}, {"observed_high", s.observed_high},
              {"min", s.min},             {"max", s.max},       {"samples", s.samples},
              {"coverage", s.coverage}};
}

float number_field(const json& j, const char* key, const std::string& where) {
  if (!j.contains(key) || !j[key].is_number())
    throw Error(ErrorCode::kParse, fmt::format("{}: field '{}': expected a number, found {}", where, key,
                                               j.contains(key) ? show_json(j[key]) : "nothing"));
  return j[key].get<float>();
}

LayerSoftmaxStats from_json(const json& j, const std::string& where) {
  if (!j.is_object()) throw Error(ErrorCode::kParse, fmt::format("{}: expected an object, found {}", where, show_json(j)));
  LayerSoftmaxStats s;
  s.range.phi = number_field(j, "phi", where);
  s.range.lo = number_field(j, "lo", where);
  s.range.hi = number_field(j, "hi", where);
  if (!(s.range.lo <= s.range.phi && s.range.phi <= s.range.hi && s.range.lo < s.range.hi))
    throw Error(ErrorCode::kParse, fmt::format("{}: expected lo <= phi <= hi, found lo {} phi {} hi {}", where,
                                               s.range.lo, s.range.phi, s.range.hi));
  if (s.range.hi - s.range.phi > kSoftmaxHalfWindow + 1e-3f || s.range.phi - s.range.lo > kSoftmaxHalfWindow + 1e-3f)
    throw Error(ErrorCode::kParse, fmt::format("{}: [lo, hi] reaches more than {} from phi: e^(s - phi) could "
                                               "leave fp32", where, kSoftmaxHalfWindow));
  s.observed_low = j.value("observed_low", 0.0f);
  s.observed_high = j.value("observed_high", 0.0f);
  s.min = j.value("min", 0.0f);
  s.max = j.value("max", 0.0f);
  s.samples = j.value("samples", int64_t{0});
  s.coverage = j.value("coverage", 1.0);
  return s;
}

}  // namespace

LayerSoftmaxStats calibrate_layer(const Histogram& h) {
  LayerSoftmaxStats s;
  s.samples = h.count();
  if (h.count() == 0) return s;  // nothing seen: the default range
  s.observed_low = h.quantile(0.00005);
  s.observed_high = h.quantile(0.99995);
  s.min = h.min();
  s.max = h.max();
  // The middle of the observed interval, moved up if needed so that hi clears the largest score
  // seen by one unit: overflow is the side that matters (very low scores only vanish, as in any
  // softmax). On the histogram's grid, so the window's edges fall on bin edges.
  const float mid = std::max(0.5f * (s.observed_low + s.observed_high), s.max + 1.0f - kSoftmaxHalfWindow);
  s.range.phi = std::ceil(mid * Histogram::kBinsPerUnit) / Histogram::kBinsPerUnit;
  s.range.lo = s.range.phi - kSoftmaxHalfWindow;
  s.range.hi = s.range.phi + kSoftmaxHalfWindow;
  s.coverage = h.fraction_within(s.range.lo, s.range.hi);
  return s;
}

SoftmaxCalibration calibrate(const std::vector<Histogram>& per_layer) {
  SoftmaxCalibration c;
  Histogram all;
  for (const Histogram& h : per_layer) {
    c.layers.push_back(calibrate_layer(h));
    all.merge(h);
  }
  c.model = calibrate_layer(all);
  return c;
}

void write_softmax_calibration(const std::filesystem::path& path, const SoftmaxCalibration& c) {
  json layers = json::array();
  for (const auto& l : c.layers) layers.push_back(to_json(l));
  const json doc{{"format", "fdpp softmax range v1"},
                 {"note", "scaled scores s = q.k / sqrt(head_dim); the runtime checks every s against [lo, hi] "
                          "of its layer and recomputes rows outside with the online softmax"},
                 {"model", to_json(c.model)},
                 {"layers", layers}};
  std::ofstream f(path);
  if (!f) throw Error(ErrorCode::kIo, fmt::format("cannot write '{}'", path.string()));
  f << doc.dump(1) << "\n";
}

SoftmaxCalibration read_softmax_calibration(const std::filesystem::path& path, int64_t expected_layers) {
  const json doc = read_json_file(path);
  const std::string file = path.filename().string();
  if (!doc.is_object() || !doc.contains("model"))
    throw Error(ErrorCode::kParse, fmt::format("{}: expected an object with field 'model'", file));
  SoftmaxCalibration c;
  c.model = from_json(doc["model"], file + ": model");
  if (doc.contains("layers")) {
    if (!doc["layers"].is_array())
      throw Error(ErrorCode::kParse, fmt::format("{}: field 'layers': expected an array, found {}", file,
                                                 doc["layers"].type_name()));
    if (static_cast<int64_t>(doc["layers"].size()) != expected_layers)
      throw Error(ErrorCode::kParse, fmt::format("{}: field 'layers': expected {} entries (the model's layers), "
                                                 "found {}", file, expected_layers, doc["layers"].size()));
    for (size_t l = 0; l < doc["layers"].size(); ++l)
      c.layers.push_back(from_json(doc["layers"][l], fmt::format("{}: layers[{}]", file, l)));
  }
  return c;
}

std::vector<SoftmaxRangeSetting> per_layer_ranges(const SoftmaxCalibration& c, int64_t num_layers) {
  std::vector<SoftmaxRangeSetting> out;
  for (int64_t l = 0; l < num_layers; ++l)
    out.push_back(c.layers.empty() ? c.model.range : c.layers.at(static_cast<size_t>(l)).range);
  return out;
}

}  // namespace fdpp
