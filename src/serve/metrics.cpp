#include "serve/metrics.h"

#include <prometheus/text_serializer.h>

namespace lorahub::serve {

namespace {

using prometheus::Histogram;

Histogram::BucketBoundaries latency_buckets() {
  return {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
}

}  // namespace

Metrics::Metrics()
    : registry_(std::make_shared<prometheus::Registry>()),
      requests_(prometheus::BuildCounter()
                    .Name("lorahub_requests_total")
                    .Help("Requests answered, by endpoint and HTTP status")
                    .Register(*registry_)),
      prompt_tokens_(prometheus::BuildCounter()
                         .Name("lorahub_prompt_tokens_total")
                         .Help("Prompt tokens of finished requests")
                         .Register(*registry_)
                         .Add({})),
      completion_tokens_(prometheus::BuildCounter()
                             .Name("lorahub_completion_tokens_total")
                             .Help("Generated tokens of finished requests")
                             .Register(*registry_)
                             .Add({})),
      queue_depth_(prometheus::BuildGauge()
                       .Name("lorahub_queue_depth")
                       .Help("Requests waiting for a place in the batch")
                       .Register(*registry_)
                       .Add({})),
      batch_size_(prometheus::BuildGauge()
                      .Name("lorahub_batch_size")
                      .Help("Sequences in the latest engine step")
                      .Register(*registry_)
                      .Add({})),
      max_batch_size_(prometheus::BuildGauge()
                          .Name("lorahub_batch_size_max")
                          .Help("The most sequences one engine step has had")
                          .Register(*registry_)
                          .Add({})),
      batch_sizes_(prometheus::BuildHistogram()
                       .Name("lorahub_batch_size_steps")
                       .Help("Sequences per engine step")
                       .Register(*registry_)
                       .Add({}, Histogram::BucketBoundaries{1, 2, 4, 8, 16, 32, 64})),
      ttft_(prometheus::BuildHistogram()
                .Name("lorahub_time_to_first_token_seconds")
                .Help("From the request's arrival to its first generated text")
                .Register(*registry_)
                .Add({}, latency_buckets())),
      token_latency_(prometheus::BuildHistogram()
                         .Name("lorahub_time_per_token_seconds")
                         .Help("Between consecutive tokens of one sequence")
                         .Register(*registry_)
                         .Add({}, latency_buckets())) {}

void Metrics::request_done(const std::string& endpoint, int status) {
  requests_.Add({{"endpoint", endpoint}, {"status", std::to_string(status)}}).Increment();
}

void Metrics::tokens(size_t prompt, size_t completion) {
  prompt_tokens_.Increment(static_cast<double>(prompt));
  completion_tokens_.Increment(static_cast<double>(completion));
}

void Metrics::queue_depth(size_t waiting) {
  queue_depth_.Set(static_cast<double>(waiting));
}

void Metrics::batch(size_t sequences) {
  batch_size_.Set(static_cast<double>(sequences));
  if (static_cast<double>(sequences) > max_batch_size_.Value())
    max_batch_size_.Set(static_cast<double>(sequences));
  if (sequences > 0) batch_sizes_.Observe(static_cast<double>(sequences));
}

void Metrics::first_token(double seconds) {
  ttft_.Observe(seconds);
}
void Metrics::token_gap(double seconds) {
  token_latency_.Observe(seconds);
}

std::string Metrics::text() const {
  return prometheus::TextSerializer().Serialize(registry_->Collect());
}

}  // namespace lorahub::serve
