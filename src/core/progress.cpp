#include "core/progress.h"

#include <fmt/format.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>

#include "core/clock.h"

namespace lorahub {
namespace {
std::atomic<bool> g_quiet{false};

std::string format_seconds(double s) {
  if (s < 0) s = 0;
  const int total = static_cast<int>(s + 0.5);
  if (total >= 3600) return fmt::format("{}h{:02}m", total / 3600, (total / 60) % 60);
  return fmt::format("{}:{:02}", total / 60, total % 60);
}
}  // namespace

void Progress::set_quiet(bool quiet) {
  g_quiet = quiet;
}

Progress::Progress(std::string label, size_t total)
    : label_(std::move(label)),
      total_(total),
      tty_(::isatty(STDERR_FILENO) != 0),
      start_(std::chrono::steady_clock::now()) {}

Progress::~Progress() {
  if (tty_ && !finished_ && !g_quiet) std::fputc('\n', stderr);
}

void Progress::update(size_t done, const std::string& detail) {
  if (g_quiet) return;
  const double elapsed = seconds_since(start_);
  const double eta = done > 0 && total_ > done ? elapsed / done * (total_ - done) : 0.0;
  if (tty_) {
    constexpr int kWidth = 24;
    const int filled = total_ ? static_cast<int>(kWidth * done / total_) : kWidth;
    std::string bar(filled, '#');
    bar.resize(kWidth, '.');
    std::fprintf(stderr, "\r\033[K%s [%s] %zu/%zu %s ETA %s", label_.c_str(), bar.c_str(), done,
                 total_, detail.c_str(), format_seconds(eta).c_str());
  } else {
    std::fprintf(stderr, "%s %zu/%zu %s (elapsed %s, ETA %s)\n", label_.c_str(), done, total_,
                 detail.c_str(), format_seconds(elapsed).c_str(), format_seconds(eta).c_str());
  }
  std::fflush(stderr);
}

void Progress::finish(const std::string& detail) {
  if (finished_) return;
  finished_ = true;
  if (g_quiet) return;
  const double elapsed = seconds_since(start_);
  if (tty_) std::fputc('\n', stderr);
  std::fprintf(stderr, "%s done in %s %s\n", label_.c_str(), format_seconds(elapsed).c_str(),
               detail.c_str());
  std::fflush(stderr);
}

}  // namespace lorahub
