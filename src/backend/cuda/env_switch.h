// The CUDA backend's A/B switches from the environment (README.md lists them), read one way
// everywhere. Host-only C++.
#pragma once

#include <cstdlib>

namespace fdpp::cuda {

// NAME's value when it is set to a whole decimal number, else -1 (unset, empty or not a number).
inline int env_switch(const char* name) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return -1;
  char* end = nullptr;
  const long n = std::strtol(v, &end, 10);
  return *end == '\0' ? static_cast<int>(n) : -1;
}

}  // namespace fdpp::cuda
