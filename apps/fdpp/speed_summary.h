// The one-line speed report printed after generation.
#pragma once

#include <string>

#include "fdpp/engine.h"

namespace fdpp::cli {

// "prompt 5 tok in 2.1 ms (2381 tok/s) | 60 tok in 51.0 ms: 1176.5 tok/s, 0.85 ms/token |
//  1.2 GB/s streamed (... of the ... ceiling)"
std::string format_speed_summary(const Engine& engine, const GenerationResult& result);

}  // namespace fdpp::cli
