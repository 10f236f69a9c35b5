#include "cli/stop_signals.h"

#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <thread>

#include "cli/command.h"

namespace lorahub::cli {
namespace {

// Libraries (OpenBLAS, OpenMP) start threads before main, so masking signals cannot route them to
// one thread; instead the handler writes a byte to a pipe (async-signal-safe) and a watcher
// thread, blocked reading it, does the stopping.
int g_stop_pipe[2] = {-1, -1};

void on_stop_signal(int) {
  const char byte = 1;
  [[maybe_unused]] const auto written = ::write(g_stop_pipe[1], &byte, 1);
}

}  // namespace

void stop_on_signals(std::function<void()> stop) {
  check(::pipe(g_stop_pipe) == 0, "cannot create a pipe: {}", std::strerror(errno));
  std::thread([stop = std::move(stop)] {
    char byte = 0;
    while (::read(g_stop_pipe[0], &byte, 1) < 0 && errno == EINTR) {
    }
    stop();
  }).detach();
  struct sigaction action {};
  action.sa_handler = on_stop_signal;
  sigemptyset(&action.sa_mask);
  ::sigaction(SIGINT, &action, nullptr);
  ::sigaction(SIGTERM, &action, nullptr);
}

}  // namespace lorahub::cli
