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
constexpr char kSignalled = 1, kDone = 0;  // kDone: the subcommand ended, stop nothing

void on_stop_signal(int) {
  [[maybe_unused]] const auto written = ::write(g_stop_pipe[1], &kSignalled, 1);
}

char read_byte(int fd) {
  char byte = kDone;
  while (::read(fd, &byte, 1) < 0 && errno == EINTR) {
  }
  return byte;
}

}  // namespace

StopOnSignals::StopOnSignals(std::function<void()> stop) {
  check(g_stop_pipe[0] < 0, "stop_on_signals: one per process");
  check(::pipe(g_stop_pipe) == 0, "cannot create a pipe: {}", std::strerror(errno));
  watcher_ = std::thread([stop = std::move(stop)] {
    if (read_byte(g_stop_pipe[0]) == kSignalled) stop();
  });
  struct sigaction action {};
  action.sa_handler = on_stop_signal;
  sigemptyset(&action.sa_mask);
  ::sigaction(SIGINT, &action, nullptr);
  ::sigaction(SIGTERM, &action, nullptr);
}

// Wakes the watcher if no signal did (a signal's byte, written first, still wins) and waits
// for it. The handlers stay: a late signal writes to a pipe no one reads.
StopOnSignals::~StopOnSignals() {
  [[maybe_unused]] const auto written = ::write(g_stop_pipe[1], &kDone, 1);
  watcher_.join();
}

}  // namespace lorahub::cli
