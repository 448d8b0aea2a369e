// StopMatcher: finds stop strings in streamed text and holds back any tail that could still
// become one, so a stop string is never partly shown to the user (vLLM / OpenAI semantics).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace fdpp {

class StopMatcher {
 public:
  explicit StopMatcher(std::vector<std::string> stop_strings);

  // Appends text; returns what may be shown now. After a stop string is found, stopped() is
  // true and the text before it is returned; later calls return nothing.
  std::string push(std::string_view text);
  // At the end of generation: whatever was held back.
  std::string flush();
  bool stopped() const { return stopped_; }

 private:
  std::vector<std::string> stops_;
  std::string pending_;  // text not yet shown
  bool stopped_ = false;
};

}  // namespace fdpp
