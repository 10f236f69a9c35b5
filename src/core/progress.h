// Progress for long work: a bar with ETA when stderr is a terminal, plain lines otherwise.
#pragma once
#include <chrono>
#include <cstddef>
#include <string>

namespace lorahub {

class Progress {
 public:
  Progress(std::string label, size_t total);
  ~Progress();
  // Advance to `done` steps; `detail` is shown after the counter (e.g. "obj 1.234 best 1.1").
  void update(size_t done, const std::string& detail = "");
  void finish(const std::string& detail = "");
  static void set_quiet(bool quiet);  // e.g. --quiet or --json on stdout

 private:
  std::string label_;
  size_t total_;
  bool tty_;
  bool finished_ = false;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace lorahub
