// The bf16 fast path behind kernels/matmul.h: oneDNN's matmul with bf16 inputs and f32
// accumulation and output (AVX512-BF16 / AMX where the CPU has them), or for a few rows our
// kernel (kernels/small_rows_bf16.h). Without oneDNN the library path widens B to f32 and calls
// sgemm, so results differ only by the rounding of A.
#include <algorithm>
#include <map>
#include <tuple>
#include <vector>

#include "core/error.h"
#include "core/half.h"
#include "kernels/dnnl_engine.h"
#include "kernels/matmul.h"
#include "kernels/small_rows_bf16.h"

#ifdef LORAHUB_HAVE_DNNL
#include <oneapi/dnnl/dnnl.h>
#endif

namespace lorahub {

namespace {

// A in bf16 (round to nearest even, as PyTorch's .to(bfloat16)), in a buffer reused per thread.
const uint16_t* to_bf16(const float* a, int64_t count) {
  thread_local std::vector<uint16_t> buffer;
  buffer.resize(static_cast<size_t>(count));
  f32_to_bf16(a, buffer.data(), buffer.size());
  return buffer.data();
}

#ifdef LORAHUB_HAVE_DNNL
// One compiled matmul per shape. Building a primitive descriptor and a primitive costs tens of
// microseconds even with oneDNN's own cache: nothing against a prefill's products, but a decoding
// step runs ~200 small ones (batch-10 rows), where it was a fifth of the step.
struct Bf16Matmul {
  dnnl::memory::desc a_md, b_md, c_md;
  dnnl::matmul primitive;
};

// C's rows are ldc apart (ldc ≥ n: a tile of a wider product's columns).
const Bf16Matmul& bf16_matmul(int64_t m, int64_t n, int64_t k, int64_t ldc, float beta) {
  using dnnl::memory;
  using tag = memory::format_tag;
  using dt = memory::data_type;
  thread_local std::map<std::tuple<int64_t, int64_t, int64_t, int64_t, float>, Bf16Matmul> cache;
  auto key = std::make_tuple(m, n, k, ldc, beta);
  auto it = cache.find(key);
  if (it != cache.end()) return it->second;
  memory::desc a_md({m, k}, dt::bf16, tag::ab);
  memory::desc b_md({k, n}, dt::bf16, tag::ba);  // B [n,k] row-major is Bᵀ [k,n] column-major
  memory::desc c_md({m, n}, dt::f32, memory::dims{ldc, 1});
  dnnl::primitive_attr attr;
  if (beta != 0.0f) {
    dnnl::post_ops ops;
    ops.append_sum(beta);
    attr.set_post_ops(ops);
  }
  dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(a_md, b_md, c_md), attr, cpu_engine());
  if (cache.size() > 4096) cache.clear();  // shapes vary with batch lengths; keep it bounded
  return cache.emplace(key, Bf16Matmul{a_md, b_md, c_md, dnnl::matmul(pd)}).first->second;
}

void dnnl_abt(const uint16_t* a, const uint16_t* b, float* c, int64_t m, int64_t n, int64_t k,
              int64_t ldc, float beta) {
  using dnnl::memory;
  const Bf16Matmul& mm = bf16_matmul(m, n, k, ldc, beta);
  dnnl::engine& engine = cpu_engine();
  dnnl::stream& stream = thread_stream();
  memory a_mem(mm.a_md, engine, const_cast<uint16_t*>(a));
  memory b_mem(mm.b_md, engine, const_cast<uint16_t*>(b));
  memory c_mem(mm.c_md, engine, c);
  mm.primitive.execute(stream,
                       {{DNNL_ARG_SRC, a_mem}, {DNNL_ARG_WEIGHTS, b_mem}, {DNNL_ARG_DST, c_mem}});
  stream.wait();
}
#else
void sgemm_abt_widened(const uint16_t* a, const uint16_t* b, float* c, int64_t m, int64_t n,
                       int64_t k, int64_t ldc, float beta) {
  std::vector<float> a32(static_cast<size_t>(m * k)), b32(static_cast<size_t>(n * k));
  bf16_to_f32(a, a32.data(), a32.size());
  bf16_to_f32(b, b32.data(), b32.size());
  gemm(true, m, n, k, a32.data(), k, b32.data(), k, c, ldc, beta);
}
#endif

}  // namespace

bool bf16_matmul_native() {
#ifdef LORAHUB_HAVE_DNNL
  return true;
#else
  return false;
#endif
}

namespace {

// Rows up to which our small-rows kernel beats oneDNN. Where oneDNN runs AMX tiles they win
// from about 8 rows (`bench_matmul_small_rows --threads 2`, Intel Xeon with AMX, 2026-12-04: 4
// rows 12.4 ms ours vs 18.4, 8 rows 19.3 vs 18.7, 32 rows 58.9 vs 23.1); on AVX512-BF16 alone
// ours wins up to kSmallRowsMax (AMD EPYC: 1.3-1.5x for 1-16 rows).
constexpr int64_t kSmallRowsMaxWithAmx = 6;

int64_t small_rows_max() {
#ifdef LORAHUB_HAVE_DNNL
  static const bool amx =
      (dnnl_get_effective_cpu_isa() & dnnl_cpu_isa_avx512_core_amx) == dnnl_cpu_isa_avx512_core_amx;
  if (amx) return kSmallRowsMaxWithAmx;
#endif
  return kSmallRowsMax;
}

}  // namespace

void matmul_abt_bf16(const float* a, const uint16_t* b, float* c, int64_t m, int64_t n, int64_t k,
                     float beta, Bf16Path path) {
  if (m == 0 || n == 0) return;
  check(m > 0 && n > 0 && k > 0, "matmul_abt_bf16: bad shape m={} n={} k={}", m, n, k);
  matmul_abt_bf16(to_bf16(a, m * k), b, c, m, n, k, beta, path);
}

void matmul_abt_bf16(const uint16_t* a16, const uint16_t* b, float* c, int64_t m, int64_t n,
                     int64_t k, float beta, Bf16Path path) {
  if (m == 0 || n == 0) return;
  check(m > 0 && n > 0 && k > 0, "matmul_abt_bf16: bad shape m={} n={} k={}", m, n, k);
  if (path == Bf16Path::kAuto)
    path = m <= small_rows_max() && small_rows_bf16_available() ? Bf16Path::kSmallRows
                                                                : Bf16Path::kLibrary;
  if (path == Bf16Path::kSmallRows) return small_rows_abt_bf16(a16, b, c, m, n, k, beta);
  matmul_abt_bf16_library(a16, b, c, n, m, n, k, beta);
}

void matmul_abt_bf16_library(const uint16_t* a16, const uint16_t* b, float* c, int64_t ldc,
                             int64_t m, int64_t n, int64_t k, float beta) {
  if (m == 0 || n == 0) return;
  check(m > 0 && n > 0 && k > 0 && ldc >= n,
        "matmul_abt_bf16_library: bad shape m={} n={} k={} ldc={}", m, n, k, ldc);
#ifdef LORAHUB_HAVE_DNNL
  dnnl_abt(a16, b, c, m, n, k, ldc, beta);
#else
  sgemm_abt_widened(a16, b, c, m, n, k, ldc, beta);
#endif
}

}  // namespace lorahub
