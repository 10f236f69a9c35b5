// SIGINT/SIGTERM end a long-running server subcommand (hub serve, serve) cleanly.
#pragma once
#include <functional>
#include <thread>

namespace lorahub::cli {

// Installs handlers for SIGINT and SIGTERM; the first signal runs `stop` once, on a thread of
// its own (so it may block, e.g. to drain in-flight requests). One per process. Declare it after
// the server it stops: its destructor waits for a `stop` under way to return, so the server is
// not destroyed under it (a stop() still inside the server's event loop when run() has returned).
class StopOnSignals {
 public:
  explicit StopOnSignals(std::function<void()> stop);
  ~StopOnSignals();
  StopOnSignals(const StopOnSignals&) = delete;
  StopOnSignals& operator=(const StopOnSignals&) = delete;

 private:
  std::thread watcher_;
};

}  // namespace lorahub::cli
