// check_sessions MODEL MODULE_DIR...: the engine's promise that a loaded model is immutable and
// serves many adapters at once, checked on real weights (tests/parity/test_sessions.py makes tiny
// T5 and Llama models with PEFT modules and runs this, also built with ThreadSanitizer):
//   1. threads:  K threads, each scoring and decoding with its own composition on the one model,
//                give bit for bit what the same calls give one after another;
//   2. mixed:    one score call / one decode call whose rows carry the K adapters equals the K
//                separate calls (losses within 1e-5 relative, texts identical);
//   3. batcher:  the continuous batcher, sequences joining at different steps, each with its
//                adapter, gives the texts of decoding each prompt alone.
// Prints one JSON object; exits 1 when a check fails.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <map>
#include <thread>

#include <nlohmann/json.hpp>

#include "lora/combine.h"
#include "lora/compose.h"
#include "lora/module_set.h"
#include "models/batcher.h"
#include "models/decode.h"
#include "models/model.h"

using namespace lorahub;
using nlohmann::json;

namespace {

const std::vector<std::string> kPrompts = {"The capital of France is", "Sort the words: b a c",
                                           "Is 17 a prime number?"};
const std::vector<std::pair<std::string, std::string>> kExamples = {
    {"Q: 2 + 2 = ?", "4"}, {"Q: Is the sky green?", "no"}, {"Q: first letter of cat", "c"}};
constexpr int kNewTokens = 8;

struct Outcome {
  std::vector<double> losses;
  std::vector<std::string> texts;
};

// The k-th composition: distinct weights per k (k = 0: no adapter, the base model).
std::shared_ptr<const BoundLora> composition(const Model& model, const ModuleSet& set, size_t k) {
  if (k == 0) return nullptr;
  std::vector<double> w(set.size());
  for (size_t i = 0; i < w.size(); ++i) w[i] = std::sin(1.0 + 2.7 * k + 1.3 * i);
  return model.bind_lora(std::make_shared<const LoraMap>(compose(set, w)));
}

std::vector<Example> examples(const Model& model) {
  std::vector<Example> out;
  for (const auto& [in, target] : kExamples) out.push_back(model.make_example(in, target));
  return out;
}

std::vector<std::vector<int32_t>> prompt_ids(const Model& model) {
  std::vector<std::vector<int32_t>> out;
  for (const std::string& p : kPrompts) out.push_back(model.tokenizer().encode(p));
  return out;
}

SequenceLora one(const BoundLora* lora) {
  return lora ? SequenceLora{lora} : SequenceLora{};
}

Outcome run_alone(const Model& model, const BoundLora* lora) {
  Outcome o;
  for (const ExampleLoss& l : model.score(examples(model), one(lora))) o.losses.push_back(l.ce_sum);
  DecodeOptions options;
  options.max_new_tokens = kNewTokens;
  for (const Decoded& d : decode(model, prompt_ids(model), options, one(lora)))
    o.texts.push_back(d.text);
  return o;
}

double relative_gap(double a, double b) {
  return std::abs(a - b) / std::max(1e-12, std::abs(b));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::cerr << "usage: check_sessions MODEL MODULE_DIR...\n";
    return 2;
  }
  try {
    // CHECK_THREADS=1 for the ThreadSanitizer run: libgomp is not instrumented, so races inside
    // its parallel regions would be false reports; the sessions' own threads are what we check.
    LoadOptions load;
    if (const char* t = std::getenv("CHECK_THREADS")) load.threads = std::atoi(t);
    const std::unique_ptr<const Model> model = load_model(argv[1], load);
    const ModuleSet set = ModuleSet::load(std::vector<std::string>(argv + 2, argv + argc));
    constexpr size_t K = 4;
    std::vector<std::shared_ptr<const BoundLora>> adapters;
    for (size_t k = 0; k < K; ++k) adapters.push_back(composition(*model, set, k));
    json report;
    bool ok = true;

    // 1. K threads against the same calls in sequence.
    std::vector<Outcome> sequential, threaded(K);
    for (size_t k = 0; k < K; ++k) sequential.push_back(run_alone(*model, adapters[k].get()));
    std::vector<std::thread> threads;
    for (size_t k = 0; k < K; ++k)
      threads.emplace_back([&, k] { threaded[k] = run_alone(*model, adapters[k].get()); });
    for (auto& t : threads) t.join();
    bool threads_equal = true, distinct = false;
    for (size_t k = 0; k < K; ++k) {
      threads_equal &=
          threaded[k].losses == sequential[k].losses && threaded[k].texts == sequential[k].texts;
      distinct |= sequential[k].losses != sequential[0].losses;
    }
    report["threads_equal"] = threads_equal;
    report["compositions_differ"] = distinct;  // else the check would prove nothing
    ok &= threads_equal && distinct;

    // 2. One call whose rows carry the K adapters.
    std::vector<Example> rows;
    SequenceLora row_lora;
    std::vector<std::vector<int32_t>> prompts;
    SequenceLora prompt_lora;
    for (size_t k = 0; k < K; ++k) {
      for (const Example& e : examples(*model)) {
        rows.push_back(e);
        row_lora.push_back(adapters[k].get());
      }
      for (const auto& p : prompt_ids(*model)) {
        prompts.push_back(p);
        prompt_lora.push_back(adapters[k].get());
      }
    }
    const std::vector<ExampleLoss> mixed = model->score(rows, row_lora);
    DecodeOptions options;
    options.max_new_tokens = kNewTokens;
    const std::vector<Decoded> mixed_texts = decode(*model, prompts, options, prompt_lora);
    double worst = 0;
    bool texts_equal = true;
    for (size_t k = 0; k < K; ++k) {
      for (size_t i = 0; i < kExamples.size(); ++i)
        worst = std::max(
            worst, relative_gap(mixed[k * kExamples.size() + i].ce_sum, sequential[k].losses[i]));
      for (size_t i = 0; i < kPrompts.size(); ++i)
        texts_equal &= mixed_texts[k * kPrompts.size() + i].text == sequential[k].texts[i];
    }
    report["mixed_loss_max_relative_gap"] = worst;
    report["mixed_texts_equal"] = texts_equal;
    ok &= worst <= 1e-5 && texts_equal;

    // 3. The continuous batcher: sequence j joins at step j, with adapter j % K.
    ContinuousBatcher batcher(*model);
    std::map<uint64_t, std::string> texts;
    std::map<uint64_t, size_t> which;  // id -> (k, prompt) index
    const size_t total = K * kPrompts.size();
    size_t added = 0, max_together = 0;
    const auto ids = prompt_ids(*model);
    while (added < total || batcher.active() > 0) {
      if (added < total) {
        const size_t k = added % K, p = added / K;
        DecodeOptions o;
        o.max_new_tokens = kNewTokens;
        o.on_event = [&texts](const StreamEvent& e) {
          if (e.done) texts[e.sequence] = e.result->text;
          return true;
        };
        which[batcher.add(ids[p], adapters[k], o)] = k * kPrompts.size() + p;
        ++added;
      }
      max_together = std::max(max_together, batcher.step());
    }
    bool batcher_equal = texts.size() == total;
    for (const auto& [id, text] : texts) {
      const size_t index = which.at(id);
      batcher_equal &= text == sequential[index / kPrompts.size()].texts[index % kPrompts.size()];
    }
    report["batcher_texts_equal"] = batcher_equal;
    report["batcher_max_sequences_per_step"] = max_together;
    ok &= batcher_equal && max_together > 1;
    report["ok"] = ok;
    std::cout << report.dump() << "\n";
    return ok ? 0 : 1;
  } catch (const std::exception& e) {
    std::cerr << "check_sessions: error: " << e.what() << "\n";
    return 1;
  }
}
