// lorahub_cpp._core: a thin pybind11 layer over the public C++ API (include/lorahub/lorahub.h).
// The Pythonic surface (defaults, progress bars, the reference's drop-in functions) is Python,
// in this folder; this file only converts types, releases the GIL around compute and turns
// errors into Python exceptions:
//   * lorahub::Error -> lorahub_cpp.LorahubError (set by the package with set_error_class);
//   * an exception raised by a Python callback, or Ctrl-C noticed in one (PyErr_CheckSignals),
//     stops the call (the callback returns false, the engine throws api::Cancelled) and is
//     re-raised as it was, so Ctrl-C is a KeyboardInterrupt.
#include <pybind11/functional.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "lorahub/lorahub.h"

namespace py = pybind11;
namespace api = lorahub::api;

namespace {

// The Python exception class lorahub::Error becomes (RuntimeError until the package sets its own).
py::object& error_class() {
  static py::object* cls = new py::object(py::reinterpret_borrow<py::object>(PyExc_RuntimeError));
  return *cls;
}

// The first Python exception raised inside a callback of one engine call. The engine sees only
// "cancel"; once the call has unwound (with the GIL held again), the exception is re-raised.
class CallbackErrors {
 public:
  // Runs fn with the GIL held; false when it raised (the exception is kept) or an earlier
  // callback already did.
  template <class Fn>
  bool call(Fn&& fn) {
    py::gil_scoped_acquire gil;
    if (error_) return false;
    try {
      if (PyErr_CheckSignals() != 0) throw py::error_already_set();
      return fn();
    } catch (py::error_already_set& e) {
      error_ = std::make_shared<py::error_already_set>(std::move(e));
      return false;
    }
  }
  // Runs the engine call without the GIL; a cancellation caused by a callback re-raises what
  // the callback raised.
  template <class Fn>
  auto run(Fn&& fn) {
    try {
      py::gil_scoped_release nogil;
      return fn();
    } catch (const api::Cancelled&) {
      rethrow();
      throw;
    } catch (...) {
      rethrow();  // a failure after a callback raised: the callback's exception comes first
      throw;
    }
  }
  ~CallbackErrors() {
    if (error_) {
      py::gil_scoped_acquire gil;
      error_.reset();
    }
  }

 private:
  void rethrow() {
    if (!error_) return;
    auto e = std::move(error_);
    e->restore();
    throw py::error_already_set();
  }
  std::shared_ptr<py::error_already_set> error_;
};

using ModelPtr = std::shared_ptr<const api::Model>;
using AdapterPtr = std::shared_ptr<const api::Adapter>;

// pybind11 holders cannot hold const objects: Python sees these wrappers.
struct PyModel {
  ModelPtr ptr;
};
struct PyAdapter {
  AdapterPtr ptr;
};

// Runs fn(session) on a session of the model with the adapter (or none), without the GIL: what
// score and generate share.
template <class Fn>
auto in_session(CallbackErrors& errors, const PyModel& model,
                const std::optional<PyAdapter>& adapter, Fn&& fn) {
  return errors.run([&] {
    api::Session session(model.ptr, adapter ? adapter->ptr : nullptr);
    return fn(session);
  });
}

// A Python callback's answer: None or true goes on, false stops.
bool goes_on(const py::object& answer) {
  return answer.is_none() || answer.cast<bool>();
}

// A numpy array that owns the vector (no copy of the data).
template <class T>
py::array_t<T> to_numpy(std::vector<T>&& v) {
  auto* owned = new std::vector<T>(std::move(v));
  py::capsule free_when_done(owned, [](void* p) { delete static_cast<std::vector<T>*>(p); });
  return py::array_t<T>({owned->size()}, {sizeof(T)}, owned->data(), free_when_done);
}

std::vector<double> to_weights(
    const py::array_t<double, py::array::c_style | py::array::forcecast>& a) {
  if (a.ndim() != 1) throw py::value_error("weights must be a 1-D sequence of numbers");
  return {a.data(), a.data() + a.size()};
}

api::ComposeOptions compose_options(const std::string& method, std::optional<double> density,
                                    const std::string& majority_sign, int64_t svd_rank,
                                    std::optional<double> svd_clamp, uint64_t seed) {
  api::ComposeOptions o;
  o.method = method;
  o.density = density;
  o.majority_sign = majority_sign;
  o.svd_rank = svd_rank;
  o.svd_clamp = svd_clamp;
  o.seed = seed;
  return o;
}

py::tuple score(const PyModel& model, const std::vector<std::string>& inputs,
                const std::vector<std::string>& outputs, const std::optional<PyAdapter>& adapter,
                int batch_size) {
  CallbackErrors errors;
  auto scores = in_session(errors, model, adapter, [&](api::Session& session) {
    return session.score(inputs, outputs, batch_size);
  });
  std::vector<double> loss_sum;
  std::vector<int64_t> tokens;
  for (const auto& s : scores) {
    loss_sum.push_back(s.loss_sum);
    tokens.push_back(s.tokens);
  }
  return py::make_tuple(to_numpy(std::move(loss_sum)), to_numpy(std::move(tokens)));
}

// on_text(index, text, done, finish_reason) -> bool | None; on_progress(done, total) -> bool | None
py::list generate(const PyModel& model, const std::vector<std::string>& prompts,
                  const std::optional<PyAdapter>& adapter, int max_new_tokens, float temperature,
                  int top_k, float top_p, uint64_t seed, const std::vector<std::string>& stop,
                  int batch_size, const py::object& on_text, const py::object& on_progress) {
  CallbackErrors errors;
  api::GenerationOptions o;
  o.max_new_tokens = max_new_tokens;
  o.temperature = temperature;
  o.top_k = top_k;
  o.top_p = top_p;
  o.seed = seed;
  o.stop = stop;
  o.batch_size = batch_size;
  if (!on_text.is_none()) {
    o.on_text = [&](const api::TextEvent& e) {
      return errors.call([&] {
        return goes_on(
            on_text(e.index, py::str(e.text.data(), e.text.size()), e.done, e.finish_reason));
      });
    };
  }
  // Always there: it is where Ctrl-C is noticed.
  o.on_progress = [&](std::string_view, size_t done, size_t total) {
    return errors.call([&] { return on_progress.is_none() || goes_on(on_progress(done, total)); });
  };
  auto generations = in_session(
      errors, model, adapter, [&](api::Session& session) { return session.generate(prompts, o); });
  py::list out;
  for (auto& g : generations)
    out.append(py::make_tuple(g.text, g.ids, g.finish_reason, g.prompt_tokens));
  return out;
}

py::dict learn(const PyModel& model, const api::ModuleSet& modules,
               const std::vector<std::string>& inputs, const std::vector<std::string>& outputs,
               int steps, const std::string& optimizer, uint64_t seed, double l1,
               const std::string& loss, int batch_size, const api::ComposeOptions& compose,
               const py::object& regularizer, const py::object& on_step) {
  CallbackErrors errors;
  api::LearnOptions o;
  o.steps = steps;
  o.optimizer = optimizer;
  o.seed = seed;
  o.l1 = l1;
  o.loss = loss;
  o.batch_size = batch_size;
  o.compose = compose;
  if (!regularizer.is_none()) {
    // The reference calls get_regular(weights) with a numpy array and adds what it returns.
    o.regularizer = [&](const std::vector<double>& w) {
      double value = 0.0;
      bool ok = errors.call([&] {
        value = regularizer(to_numpy(std::vector<double>(w))).cast<double>();
        return true;
      });
      if (!ok) throw api::Cancelled();
      return value;
    };
  }
  o.on_step = [&](const api::LearnStep& s) {
    return errors.call([&] {
      return on_step.is_none() ||
             goes_on(on_step(s.evaluation, to_numpy(std::vector<double>(s.weights)), s.objective,
                             s.loss));
    });
  };
  auto result = errors.run([&] { return api::learn(model.ptr, modules, inputs, outputs, o); });
  py::list history;
  for (auto& s : result.history)
    history.append(
        py::make_tuple(s.evaluation, to_numpy(std::move(s.weights)), s.objective, s.loss));
  py::dict d;
  d["weights"] = to_numpy(std::move(result.weights));
  d["objective"] = result.objective;
  d["history"] = history;
  d["adapter"] = PyAdapter{result.adapter};
  d["seconds"] = result.seconds;
  return d;
}

}  // namespace

PYBIND11_MODULE(_core, m) {
  m.doc() = "lorahub's C++ engine (include/lorahub/lorahub.h); use the lorahub_cpp package";

  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const lorahub::Error& e) {
      PyErr_SetString(error_class().ptr(), e.what());
    }
  });
  m.def(
      "set_error_class", [](py::object cls) { error_class() = std::move(cls); },
      "The Python exception class that lorahub::Error becomes.");

  m.def(
      "init_runtime",
      [](int threads) {
        api::RuntimeOptions o;
        o.threads = threads;
        api::init_runtime(o);
      },
      py::arg("threads") = 0);
  m.def("version", &api::version);
  m.def("cpu_dispatch", &api::cpu_dispatch,
        "The SIMD paths this build takes on this CPU (portable wheel: clones chosen at load).");

  py::class_<PyAdapter>(m, "Adapter")
      .def_static(
          "load",
          [](const std::string& path) {
            py::gil_scoped_release nogil;
            return PyAdapter{api::Adapter::load(path)};
          },
          py::arg("path"))
      .def(
          "save",
          [](const PyAdapter& a, const std::string& dir) {
            py::gil_scoped_release nogil;
            a.ptr->save(dir);
          },
          py::arg("dir"))
      .def_property_readonly("name", [](const PyAdapter& a) { return a.ptr->name(); })
      .def_property_readonly("base_model", [](const PyAdapter& a) { return a.ptr->base_model(); })
      .def_property_readonly("rank", [](const PyAdapter& a) { return a.ptr->rank(); })
      .def_property_readonly("target_layers",
                             [](const PyAdapter& a) { return a.ptr->target_layers(); });

  py::class_<PyModel>(m, "Model")
      .def_static(
          "load",
          [](const std::string& path, bool bf16, std::vector<std::string> merge) {
            api::ModelOptions o;
            o.bf16 = bf16;
            o.merge = std::move(merge);
            py::gil_scoped_release nogil;
            return PyModel{api::Model::load(path, o)};
          },
          py::arg("path"), py::arg("bf16") = false, py::arg("merge") = std::vector<std::string>{})
      .def_property_readonly("path", [](const PyModel& mo) { return mo.ptr->path(); })
      .def_property_readonly("architecture",
                             [](const PyModel& mo) { return mo.ptr->architecture(); })
      .def_property_readonly("is_encoder_decoder",
                             [](const PyModel& mo) { return mo.ptr->is_encoder_decoder(); })
      .def_property_readonly("has_chat_template",
                             [](const PyModel& mo) { return mo.ptr->has_chat_template(); })
      .def_property_readonly("lora_targets",
                             [](const PyModel& mo) { return mo.ptr->lora_targets(); })
      .def(
          "encode",
          [](const PyModel& mo, const std::string& text, bool special_tokens) {
            return mo.ptr->encode(text, special_tokens);
          },
          py::arg("text"), py::arg("special_tokens") = true)
      .def(
          "decode",
          [](const PyModel& mo, const std::vector<int32_t>& ids) { return mo.ptr->decode(ids); },
          py::arg("ids"))
      .def(
          "chat_prompt",
          [](const PyModel& mo, const std::vector<std::pair<std::string, std::string>>& messages,
             bool add_generation_prompt) {
            std::vector<api::ChatMessage> chat;
            for (const auto& [role, content] : messages) chat.push_back({role, content});
            return mo.ptr->chat_prompt(chat, add_generation_prompt);
          },
          py::arg("messages"), py::arg("add_generation_prompt") = true)
      .def("score", &score, py::arg("inputs"), py::arg("outputs"), py::arg("adapter") = py::none(),
           py::arg("batch_size") = 0)
      .def("generate", &generate, py::arg("prompts"), py::arg("adapter") = py::none(),
           py::arg("max_new_tokens") = 256, py::arg("temperature") = 0.0f, py::arg("top_k") = 0,
           py::arg("top_p") = 1.0f, py::arg("seed") = 0,
           py::arg("stop") = std::vector<std::string>{}, py::arg("batch_size") = 10,
           py::arg("on_text") = py::none(), py::arg("on_progress") = py::none());

  py::class_<api::ComposeOptions>(m, "ComposeOptions")
      .def(py::init(&compose_options), py::arg("method") = "lorahub",
           py::arg("density") = py::none(), py::arg("majority_sign") = "total",
           py::arg("svd_rank") = 0, py::arg("svd_clamp") = py::none(), py::arg("seed") = 0);

  py::class_<api::ModuleSet>(m, "ModuleSet")
      .def_static(
          "load",
          [](const std::vector<std::string>& names, bool bf16, const std::string& endpoint,
             const std::string& token, const std::string& cache_dir) {
            api::ModuleSetOptions o;
            o.bf16 = bf16;
            o.hub_endpoint = endpoint;
            o.hub_token = token;
            o.cache_dir = cache_dir;
            py::gil_scoped_release nogil;
            return api::ModuleSet::load(names, o);
          },
          py::arg("names"), py::arg("bf16") = false, py::arg("endpoint") = "",
          py::arg("token") = "", py::arg("cache_dir") = "")
      .def("__len__", &api::ModuleSet::size)
      .def_property_readonly("names", &api::ModuleSet::names)
      .def("module",
           [](const api::ModuleSet& s, size_t i) {
             if (i >= s.size()) throw py::index_error("module index out of range");
             return PyAdapter{s.module(i)};
           })
      .def(
          "compose",
          [](const api::ModuleSet& s,
             const py::array_t<double, py::array::c_style | py::array::forcecast>& w,
             const api::ComposeOptions& o) {
            auto weights = to_weights(w);
            py::gil_scoped_release nogil;
            return PyAdapter{s.compose(weights, o)};
          },
          py::arg("weights"), py::arg("options") = api::ComposeOptions());

  m.def("learn", &learn, py::arg("model"), py::arg("modules"), py::arg("inputs"),
        py::arg("outputs"), py::arg("steps") = 40, py::arg("optimizer") = "cobyla",
        py::arg("seed") = 42, py::arg("l1") = 0.05, py::arg("loss") = "reference",
        py::arg("batch_size") = 0, py::arg("compose") = api::ComposeOptions(),
        py::arg("regularizer") = py::none(), py::arg("on_step") = py::none());

  m.def(
      "write_module_embedding",
      [](const PyModel& model, const std::string& module_dir) {
        py::gil_scoped_release nogil;
        return api::write_module_embedding(*model.ptr, module_dir);
      },
      py::arg("model"), py::arg("module_dir"));

  m.def(
      "hub_fetch",
      [](const std::vector<std::string>& ids, const std::string& endpoint, const std::string& token,
         const std::string& cache_dir) {
        api::HubOptions o{endpoint, token, cache_dir};
        py::gil_scoped_release nogil;
        return api::hub_fetch(ids, o);
      },
      py::arg("ids"), py::arg("endpoint") = "", py::arg("token") = "", py::arg("cache_dir") = "");
}
