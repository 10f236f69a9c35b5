// The server's Prometheus metrics (GET /metrics, text exposition format 0.0.4), on
// prometheus-cpp's registry and text serializer. Thread-safe.
#pragma once
#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <memory>
#include <string>

namespace lorahub::serve {

class Metrics {
 public:
  Metrics();
  void request_done(const std::string& endpoint, int status);  // lorahub_requests_total
  void tokens(size_t prompt, size_t completion);
  void queue_depth(size_t waiting);
  void batch(size_t sequences);  // one engine step with this many sequences
  void first_token(double seconds);
  void token_gap(double seconds);  // between consecutive tokens of one sequence
  std::string text() const;

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Counter>& requests_;
  prometheus::Counter& prompt_tokens_;
  prometheus::Counter& completion_tokens_;
  prometheus::Gauge& queue_depth_;
  prometheus::Gauge& batch_size_;
  prometheus::Gauge& max_batch_size_;
  prometheus::Histogram& batch_sizes_;
  prometheus::Histogram& ttft_;
  prometheus::Histogram& token_latency_;
};

}  // namespace lorahub::serve
