#include "serve/scheduler.h"

#include <fmt/format.h>

#include "serve/openai.h"

namespace lorahub::serve {

namespace {
double seconds_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}
}  // namespace

void Job::push(Piece piece) {
  {
    std::lock_guard lock(mutex_);
    if (finished_) return;
    if (piece.done) finished_ = true;
    pieces_.push_back(std::move(piece));
  }
  ready_.notify_all();
}

bool Job::next(Piece& piece, std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  if (!ready_.wait_for(lock, timeout, [&] { return !pieces_.empty(); })) return false;
  piece = std::move(pieces_.front());
  pieces_.pop_front();
  return true;
}

Scheduler::Scheduler(std::shared_ptr<const api::Model> model, SchedulerOptions options,
                     Metrics& metrics)
    : model_(model), options_(options), metrics_(metrics), batcher_(std::move(model)) {
  thread_ = std::thread([this] { loop(); });
}

Scheduler::~Scheduler() {
  drain(std::chrono::milliseconds(0));
}

std::shared_ptr<Job> Scheduler::submit(std::string prompt,
                                       std::shared_ptr<const api::Adapter> adapter,
                                       api::GenerationOptions options, size_t prompt_tokens) {
  auto job = std::make_shared<Job>();
  job->prompt_ = std::move(prompt);
  job->adapter_ = std::move(adapter);
  job->options_ = std::move(options);
  job->prompt_tokens_ = prompt_tokens;
  {
    std::lock_guard lock(mutex_);
    if (draining_) throw ApiError(503, "the server is shutting down");
    if (queue_.size() >= options_.max_queue)
      throw ApiError(429,
                     fmt::format("the server is busy: {} requests are waiting", queue_.size()));
    queue_.push_back(job);
    metrics_.queue_depth(queue_.size());
  }
  wake_.notify_one();
  return job;
}

void Scheduler::cancel(const std::shared_ptr<Job>& job) {
  if (job->finished_ || job->cancelled_.exchange(true)) return;
  {
    std::lock_guard lock(mutex_);
    cancel_pending_ = true;
  }
  wake_.notify_one();
}

size_t Scheduler::waiting() const {
  std::lock_guard lock(mutex_);
  return queue_.size();
}

size_t Scheduler::running() const {
  return running_;
}

void Scheduler::finish(Job& job, const char* reason, std::string error) {
  job.error_ = std::move(error);
  job.push({"", true, reason});
}

// Moves queued requests into the Batcher while there is room (mutex held on entry and exit; the
// Batcher's add runs unlocked so that handlers can queue meanwhile).
void Scheduler::admit(std::unique_lock<std::mutex>& lock) {
  while (!queue_.empty() && active_.size() < options_.max_batch) {
    std::shared_ptr<Job> job = std::move(queue_.front());
    queue_.pop_front();
    ++running_;  // counted as running from here on (drain must not see it in neither place)
    metrics_.queue_depth(queue_.size());
    if (job->cancelled_) {
      finish(*job, "cancelled");
      continue;
    }
    lock.unlock();
    api::GenerationOptions options = job->options_;
    // Owns the job: the Batcher may still report a sequence that was cancelled here, after its
    // handler has gone.
    options.on_text = [this, job](const api::TextEvent& event) {
      const auto now = Clock::now();
      if (!event.done) {
        // One event per generated token (its text may be empty while a character is
        // incomplete).
        ++job->completion_tokens_;
        if (!job->had_token_)
          metrics_.first_token(seconds_between(job->arrived_, now));
        else
          metrics_.token_gap(seconds_between(job->last_token_, now));
        job->had_token_ = true;
        job->last_token_ = now;
      }
      if (!event.text.empty() || event.done)
        job->push({std::string(event.text), event.done, event.done ? event.finish_reason : ""});
      return !job->cancelled_.load();
    };
    try {
      job->id_ = batcher_.add(job->prompt_, job->adapter_, options);
      active_[job->id_] = job;
    } catch (const std::exception& e) {
      finish(*job, "error", e.what());
    }
    lock.lock();
  }
  running_ = active_.size();
}

void Scheduler::loop() {
  std::unique_lock lock(mutex_);
  for (;;) {
    wake_.wait(lock,
               [&] { return stop_ || cancel_pending_ || !queue_.empty() || !active_.empty(); });
    if (stop_) break;
    admit(lock);
    const bool cancels = std::exchange(cancel_pending_, false);
    lock.unlock();
    if (cancels) {
      for (auto it = active_.begin(); it != active_.end();) {
        if (it->second->cancelled_ && !it->second->finished_) {
          batcher_.cancel(it->first);
          finish(*it->second, "cancelled");
        }
        it = it->second->finished_ ? active_.erase(it) : std::next(it);
      }
    }
    if (!active_.empty()) {
      try {
        metrics_.batch(batcher_.step());
      } catch (const std::exception& e) {  // the engine failed: every sequence in it fails
        for (auto& [id, job] : active_) {
          batcher_.cancel(id);
          finish(*job, "error", e.what());
        }
      }
      for (auto it = active_.begin(); it != active_.end();)
        it = it->second->finished_ ? active_.erase(it) : std::next(it);
    }
    lock.lock();
    running_ = active_.size();
    if (active_.empty() && queue_.empty()) idle_.notify_all();
  }
  // Stopping: whatever is left is cancelled.
  for (auto& [id, job] : active_) {
    batcher_.cancel(id);
    finish(*job, "cancelled");
  }
  active_.clear();
  for (auto& job : queue_) finish(*job, "cancelled");
  queue_.clear();
  running_ = 0;
  metrics_.queue_depth(0);
  idle_.notify_all();
}

void Scheduler::drain(std::chrono::milliseconds bound) {
  {
    std::unique_lock lock(mutex_);
    draining_ = true;
    idle_.wait_for(lock, bound, [&] { return stop_ || (queue_.empty() && running_ == 0); });
    stop_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
}

}  // namespace lorahub::serve
