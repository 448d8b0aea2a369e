#include "core/progress.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <utility>

namespace fdpp {

namespace {
constexpr int kBarWidth = 30;
constexpr auto kMinRedraw = std::chrono::milliseconds(100);  // at most ~10 redraws a second
}  // namespace

ProgressBar::ProgressBar(std::string label, size_t total, std::string unit)
    : ProgressBar(std::move(label), total, std::move(unit), stderr, ::isatty(STDERR_FILENO) == 1) {}

ProgressBar::ProgressBar(std::string label, size_t total, std::string unit, std::FILE* out, bool is_tty)
    : label_(std::move(label)), total_(total), unit_(std::move(unit)), out_(out), tty_(is_tty),
      start_(Clock::now()) {}

ProgressBar::~ProgressBar() { finish(); }

std::string ProgressBar::amount(size_t done) const {
  if (unit_ == "B") return fmt::format("{:.1f}/{:.1f} MB", done / 1e6, total_ / 1e6);
  return fmt::format("{}/{} {}", done, total_, unit_);
}

std::string ProgressBar::rate(size_t done) const {
  const double secs = std::chrono::duration<double>(Clock::now() - start_).count();
  if (secs <= 0.0 || done == 0) return "";
  if (unit_ == "B") return fmt::format("{:.1f} MB/s", done / 1e6 / secs);
  return fmt::format("{:.1f} {}/s", done / secs, unit_);
}

void ProgressBar::draw_bar(size_t done) {
  const double frac = total_ == 0 ? 1.0 : static_cast<double>(done) / static_cast<double>(total_);
  const int filled = static_cast<int>(frac * kBarWidth);
  std::string bar(static_cast<size_t>(filled), '#');
  bar.append(static_cast<size_t>(kBarWidth - filled), '-');
  // "\x1b[K" clears the rest of the line in case the previous draw was longer.
  fmt::print(out_, "\r{} [{}] {:3d}%  {}  {}\x1b[K", label_, bar, static_cast<int>(frac * 100.0), amount(done),
             rate(done));
  std::fflush(out_);
  drawn_ = true;
  last_drawn_done_ = done;
  last_draw_ = Clock::now();
}

void ProgressBar::update(size_t done) {
  if (finished_) return;
  done = std::min(done, total_);
  if (tty_) {
    const auto now = Clock::now();
    if (!drawn_ || now - last_draw_ >= kMinRedraw) draw_bar(done);
    return;
  }
  // Plain lines: print each 25% mark passed since the last update, once (the highest one).
  int quarter = total_ == 0 ? 4 : static_cast<int>(done * 4 / total_);
  if (quarter < next_quarter_) return;
  fmt::print(out_, "{}: {:3d}%  {}  {}\n", label_, quarter * 25, amount(done), rate(done));
  std::fflush(out_);
  next_quarter_ = quarter + 1;
}

void ProgressBar::finish() {
  if (finished_) return;
  if (tty_) {
    if (!drawn_ || last_drawn_done_ != total_) draw_bar(total_);
    fmt::print(out_, "\n");
    std::fflush(out_);
  } else if (next_quarter_ <= 4) {
    update(total_);
  }
  finished_ = true;
}

}  // namespace fdpp
