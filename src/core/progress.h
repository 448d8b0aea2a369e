// ProgressBar: progress of long work (loading weights) on stderr.
//
// On a terminal: one line redrawn in place with '\r' at most ~10 times a second:
//   "loading weights [##########----------]  50%  512.0/1024.0 MB  210.3 MB/s"
// Otherwise (logs, pipes): a plain line at 0, 25, 50, 75 and 100% so logs stay readable.
// A unit of "B" prints sizes in MB and a MB/s rate; any other unit prints raw counts ("12/48 tensors").
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdio>
#include <string>

namespace fdpp {

class ProgressBar {
 public:
  ProgressBar(std::string label, size_t total, std::string unit = "B");
  // Writes to `out`; `is_tty` selects the redrawn bar or the plain lines (for tests).
  ProgressBar(std::string label, size_t total, std::string unit, std::FILE* out, bool is_tty);
  ~ProgressBar();  // finish() if not finished yet
  ProgressBar(const ProgressBar&) = delete;
  ProgressBar& operator=(const ProgressBar&) = delete;

  void update(size_t done);  // done is clamped to total
  void finish();             // draws 100% once and ends the line; later calls do nothing

 private:
  using Clock = std::chrono::steady_clock;
  void draw_bar(size_t done);
  std::string amount(size_t done) const;
  std::string rate(size_t done) const;

  std::string label_;
  size_t total_;
  std::string unit_;
  std::FILE* out_;
  bool tty_;
  bool finished_ = false;
  int next_quarter_ = 0;  // plain mode: the next 25% mark (0..4) to print
  Clock::time_point start_;
  Clock::time_point last_draw_{};
  bool drawn_ = false;
  size_t last_drawn_done_ = 0;
};

}  // namespace fdpp
