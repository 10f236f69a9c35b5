// This machine's matmul peak, measured with the library the engine's products run in (W3 of issue
// 5): oneDNN's f32 matmul, bf16 x bf16 -> f32 (AVX512-BF16 or AMX when the CPU has them, else
// oneDNN's emulation; "isa" names what it dispatched to) and u8 x s8 -> s32 (AVX512-VNNI / AMX
// int8), beside OpenBLAS sgemm ("fp32_openblas": an OPENBLAS_CORETYPE setting can slow it, so it
// is not the fp32 peak) and our int8 product (kernels/quant_matmul.h). Large square problems on all
// cores, best of several timed repetitions, so the number is an honest upper bound for what a
// forward pass could reach.
//
// Usage: bench_matmul_peak [--size N] [--seconds S] [--threads T]   (prints JSON on stdout)
#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "kernels/quant_matmul.h"

#ifdef LORAHUB_HAVE_DNNL
#include <oneapi/dnnl/dnnl.hpp>
#endif

namespace {

struct Options {
  int size = 2048;
  double seconds = 2.0;  // time budget per measurement
  int threads = 0;       // 0 = all cores
};

// CPU time of the whole process (all threads), seconds.
double process_cpu_seconds() {
  timespec t{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return double(t.tv_sec) + 1e-9 * double(t.tv_nsec);
}

struct Timing {
  double seconds = 1e30;      // fastest wall time of one step
  double cpu_seconds = 1e30;  // least CPU time of one step, all threads together
};

// Best-of timing: runs `step` until `budget` seconds have passed (at least 3 times) and returns
// the fastest run; the minimum is the least disturbed by other processes on a shared machine.
// The CPU time is the measure a shared machine disturbs least (bench_forward reports it too).
Timing best_seconds(const std::function<void()>& step, double budget) {
  step();  // warm-up: page faults, packing buffers, JIT
  Timing t;
  double total = 0;
  for (int runs = 0; runs < 3 || total < budget; ++runs) {
    const double c0 = process_cpu_seconds();
    auto t0 = std::chrono::steady_clock::now();
    step();
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    t.cpu_seconds = std::min(t.cpu_seconds, process_cpu_seconds() - c0);
    t.seconds = std::min(t.seconds, s);
    total += s;
  }
  return t;
}

// The JSON fields of a timing: wall seconds and GFLOP/s, and the GFLOP/s per thread's CPU second
// times the threads (the rate on unshared cores, spinning and waiting aside).
nlohmann::json timing_fields(const Timing& t, double flops) {
  const double threads = omp_get_max_threads();
  return {{"seconds", t.seconds},
          {"gflops", flops / t.seconds / 1e9},
          {"cpu_seconds", t.cpu_seconds},
          {"cpu_gflops", flops / (t.cpu_seconds / threads) / 1e9}};
}

std::vector<float> random_matrix(int64_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> m(n);
  for (auto& x : m) x = dist(rng);
  return m;
}

nlohmann::json sgemm_peak(const Options& o) {
  const int n = o.size;
  auto a = random_matrix(int64_t(n) * n, 1), b = random_matrix(int64_t(n) * n, 2);
  std::vector<float> c(int64_t(n) * n);
  const Timing s = best_seconds(
      [&] {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, n, n, 1.0f, a.data(), n, b.data(),
                    n, 0.0f, c.data(), n);
      },
      o.seconds);
  nlohmann::json out = {{"dtype", "fp32_openblas"}, {"library", "openblas sgemm"}, {"size", n}};
  out.update(timing_fields(s, 2.0 * n * n * n));
  return out;
}

// Our int8 product (kernels/quant_matmul.h: int8 weights per output channel, f32 in and out,
// activations quantized on the fly) for all n rows: the path the engine takes for that many rows
// (oneDNN's int8 matmul, activations in two int8 levels, where the build has oneDNN) and the
// integer VNNI kernel forced (per-32 activation scales; what decoding-size products run).
nlohmann::json ours_int8_peak(const Options& o, lorahub::QuantPath path) {
  using namespace lorahub;
  const int64_t n = o.size;
  const bool vnni = path == QuantPath::kVnni;
  const char* dtype = vnni ? "int8_ours_vnni" : "int8_ours";
  if (vnni && !quant_vnni_available()) return {{"dtype", dtype}, {"error", "no AVX512-VNNI"}};
  auto a = random_matrix(n * n, 1), w = random_matrix(n * n, 2);
  const QuantMatrix b = quantize_rows_int8(w.data(), n, n);
  std::vector<float> c(n * n);
  const Timing s =
      best_seconds([&] { matmul_abt_quant(a.data(), b, c.data(), n, 0.0f, path); }, o.seconds);
  nlohmann::json out = {
      {"dtype", dtype},
      {"library", vnni ? "ours: vpdpbusd kernel, f32 input quantized per 32 values"
                       : "ours: matmul_abt_quant (kAuto), f32 in and out"},
      {"size", n}};
  out.update(timing_fields(s, 2.0 * double(n) * n * n));
  return out;
}

#ifdef LORAHUB_HAVE_DNNL
// The instruction set oneDNN dispatches to on this CPU: says what a dtype's "peak" runs on (bf16
// on a CPU without AVX512-BF16 or AMX is emulated: converted to f32 and multiplied with FMA).
std::string dnnl_isa() {
  using isa = dnnl::cpu_isa;
  switch (dnnl::get_effective_cpu_isa()) {
    case isa::avx512_core_amx:
      return "avx512_core_amx";
    case isa::avx512_core_bf16:
      return "avx512_core_bf16";
    case isa::avx512_core_vnni:
      return "avx512_core_vnni";
    case isa::avx512_core:
      return "avx512_core";
    case isa::avx2_vnni:
      return "avx2_vnni";
    case isa::avx2:
      return "avx2";
    default:
      return "other";
  }
}

// oneDNN's matmul, the library every product of the engine runs in: f32 x f32 -> f32, bf16 x
// bf16 -> f32, or u8 x s8 -> s32 (the int8 peak).
nlohmann::json dnnl_peak(const Options& o, const std::string& dtype) {
  using namespace dnnl;
  using tag = memory::format_tag;
  using dt = memory::data_type;
  const memory::dim n = o.size;
  const bool int8 = dtype == "int8", bf16 = dtype == "bf16";
  const dt src = int8 ? dt::u8 : bf16 ? dt::bf16 : dt::f32;
  engine eng(engine::kind::cpu, 0);
  stream strm(eng);
  memory::desc a_md({n, n}, src, tag::ab);
  memory::desc b_md({n, n}, int8 ? dt::s8 : src, tag::any);
  memory::desc c_md({n, n}, int8 ? dt::s32 : dt::f32, tag::ab);
  matmul::primitive_desc pd(matmul::desc(a_md, b_md, c_md), eng);
  // Let oneDNN pick its preferred (blocked) weight layout, as a real engine would do once.
  memory a(pd.src_desc(), eng), b(pd.weights_desc(), eng), c(pd.dst_desc(), eng);
  std::mt19937 rng(3);
  for (auto* m : {&a, &b}) {
    const size_t bytes = m->get_desc().get_size();
    if (int8) {  // random bytes
      auto* p = static_cast<uint8_t*>(m->get_data_handle());
      for (size_t i = 0; i < bytes; ++i) p[i] = uint8_t(rng());
      continue;
    }
    auto values = random_matrix(int64_t(bytes / (bf16 ? 2 : 4)), 3);
    if (!bf16) {
      std::memcpy(m->get_data_handle(), values.data(), bytes);
      continue;
    }
    // random bf16 (upper halves of random floats)
    auto* p = static_cast<uint16_t*>(m->get_data_handle());
    for (size_t i = 0; i < values.size(); ++i) {
      uint32_t bits;
      std::memcpy(&bits, &values[i], 4);
      p[i] = uint16_t(bits >> 16);
    }
  }
  matmul prim(pd);
  const Timing s = best_seconds(
      [&] {
        prim.execute(strm, {{DNNL_ARG_SRC, a}, {DNNL_ARG_WEIGHTS, b}, {DNNL_ARG_DST, c}});
        strm.wait();
      },
      o.seconds);
  nlohmann::json out = {{"dtype", dtype},
                        {"library", std::string("onednn matmul ") + pd.impl_info_str()},
                        {"isa", dnnl_isa()},
                        {"size", n}};
  out.update(timing_fields(s, 2.0 * double(n) * n * n));
  return out;
}
#endif

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&]() -> const char* {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "bench_matmul_peak: %s needs a value\n", arg.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (arg == "--size")
      o.size = std::atoi(value());
    else if (arg == "--seconds")
      o.seconds = std::atof(value());
    else if (arg == "--threads")
      o.threads = std::atoi(value());
    else {
      std::fprintf(stderr, "usage: bench_matmul_peak [--size N] [--seconds S] [--threads T]\n");
      std::exit(2);
    }
  }
  if (o.size < 16 || o.size > 16384 || o.seconds <= 0) {
    std::fprintf(stderr, "bench_matmul_peak: --size must be in [16, 16384], --seconds > 0\n");
    std::exit(2);
  }
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  Options o = parse(argc, argv);
  int threads = o.threads > 0 ? o.threads : omp_get_num_procs();
  openblas_set_num_threads(threads);
  omp_set_num_threads(threads);
  nlohmann::json results = nlohmann::json::array();
#ifdef LORAHUB_HAVE_DNNL
  for (const char* dtype : {"fp32", "bf16", "int8"}) results.push_back(dnnl_peak(o, dtype));
#endif
  results.push_back(sgemm_peak(o));  // beside oneDNN's: OPENBLAS_CORETYPE can slow it
  results.push_back(ours_int8_peak(o, lorahub::QuantPath::kAuto));
  results.push_back(ours_int8_peak(o, lorahub::QuantPath::kVnni));
  std::printf("%s\n", nlohmann::json{{"threads", threads}, {"results", results}}.dump(1).c_str());
}
