// Example files, the exact-match metric, the answer rule's stops, f32 tensors to safetensors and
// the stderr progress bar: the evaluation tools of eval/, formats/ and core/ for API users.
#include "core/mapped_file.h"
#include "core/progress.h"
#include "eval/answer.h"
#include "eval/jsonl.h"
#include "eval/metrics.h"
#include "formats/state_dict.h"
#include "lorahub/lorahub.h"

namespace lorahub::api {

std::vector<TextExample> read_examples(const std::string& path) {
  std::vector<TextExample> rows;
  for (lorahub::TextExample& row : read_jsonl_examples(path))
    rows.push_back({std::move(row.input), std::move(row.output), row.line});
  return rows;
}

double exact_match_accuracy(const std::vector<std::string>& predictions,
                            const std::vector<std::string>& targets) {
  return lorahub::exact_match_accuracy(predictions, targets);
}

std::vector<std::string> answer_stops() {
  return kAnswerStops;
}

void write_file_atomic(const std::string& path, const std::string& text) {
  lorahub::write_file_atomic(path, text);
}

void save_safetensors(const std::string& path,
                      const std::vector<std::pair<std::string, Matrix>>& tensors) {
  StateDict dict(path);
  for (const auto& [name, m] : tensors)
    dict.add(name, Tensor::from_f32(m.values, {m.rows, m.cols}));
  lorahub::save_safetensors(path, dict);
}

struct ProgressBar::Impl {
  Impl(std::string label, size_t total) : bar(std::move(label), total) {}
  Progress bar;
};

ProgressBar::ProgressBar(std::string label, size_t total)
    : impl_(std::make_unique<Impl>(std::move(label), total)) {}
ProgressBar::~ProgressBar() = default;

void ProgressBar::update(size_t done, const std::string& detail) {
  impl_->bar.update(done, detail);
}
void ProgressBar::finish(const std::string& detail) {
  impl_->bar.finish(detail);
}
void ProgressBar::set_quiet(bool quiet) {
  Progress::set_quiet(quiet);
}

}  // namespace lorahub::api
