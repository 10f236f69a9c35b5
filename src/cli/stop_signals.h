// SIGINT/SIGTERM end a long-running server subcommand (hub serve, serve) cleanly.
#pragma once
#include <functional>

namespace lorahub::cli {

// Installs handlers for SIGINT and SIGTERM; the first signal runs `stop` once, on a thread of
// its own (so it may block, e.g. to drain in-flight requests). Call once per process.
void stop_on_signals(std::function<void()> stop);

}  // namespace lorahub::cli
