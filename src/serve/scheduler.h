// The one thread that drives the engine: requests from the HTTP handlers wait in a bounded queue,
// join the api::Batcher between steps (up to max_batch sequences decode together, each with its
// own adapter), and their text comes back through a per-request channel. Handlers never touch
// the Batcher; the scheduler thread never blocks on a client.
#pragma once
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "lorahub/lorahub.h"
#include "serve/metrics.h"

namespace lorahub::serve {

using Clock = std::chrono::steady_clock;

// A request's place in the scheduler, shared by the handler (reading) and the scheduler
// (writing).
class Job {
 public:
  struct Piece {
    std::string text;
    bool done = false;
    std::string finish_reason;  // with done: "stop", "length", "cancelled", "error"
  };
  // Waits up to `timeout` for the next piece; false when none came.
  bool next(Piece& piece, std::chrono::milliseconds timeout);
  bool finished() const { return finished_; }
  size_t prompt_tokens() const { return prompt_tokens_; }
  size_t completion_tokens() const { return completion_tokens_; }
  const std::string& error() const { return error_; }  // with finish_reason "error"

 private:
  friend class Scheduler;
  void push(Piece piece);

  std::string prompt_;
  std::shared_ptr<const api::Adapter> adapter_;
  api::GenerationOptions options_;
  size_t prompt_tokens_ = 0;
  std::atomic<size_t> completion_tokens_{0};
  Clock::time_point arrived_ = Clock::now(), last_token_;
  bool had_token_ = false;
  std::atomic<bool> cancelled_{false};  // the client is gone
  std::atomic<bool> finished_{false};
  std::string error_;
  uint64_t id_ = 0;
  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<Piece> pieces_;
};

struct SchedulerOptions {
  size_t max_batch = 8;   // sequences decoding together
  size_t max_queue = 64;  // requests waiting for a place (more: 429)
};

class Scheduler {
 public:
  Scheduler(std::shared_ptr<const api::Model> model, SchedulerOptions options, Metrics& metrics);
  ~Scheduler();  // drain(0)

  // Queues a prompt. Throws ApiError 429 when the queue is full, 503 once draining.
  std::shared_ptr<Job> submit(std::string prompt, std::shared_ptr<const api::Adapter> adapter,
                              api::GenerationOptions options, size_t prompt_tokens);
  // The client is gone: the sequence leaves at the next step (or never starts).
  void cancel(const std::shared_ptr<Job>& job);
  // Refuses new work, lets running and queued requests finish for up to `bound`, then cancels
  // the rest and stops the thread. Idempotent.
  void drain(std::chrono::milliseconds bound);
  size_t waiting() const;
  size_t running() const;

 private:
  void loop();
  void admit(std::unique_lock<std::mutex>& lock);
  void finish(Job& job, const char* reason, std::string error = "");

  std::shared_ptr<const api::Model> model_;
  SchedulerOptions options_;
  Metrics& metrics_;
  api::Batcher batcher_;  // only loop() touches it
  mutable std::mutex mutex_;
  std::condition_variable wake_, idle_;
  std::deque<std::shared_ptr<Job>> queue_;
  std::map<uint64_t, std::shared_ptr<Job>> active_;  // by Batcher id (scheduler thread only)
  std::atomic<size_t> running_{0};
  bool draining_ = false, stop_ = false;
  bool cancel_pending_ = false;
  std::thread thread_;
};

}  // namespace lorahub::serve
