// I8 weights against many rows of A through oneDNN's int8 matmul (kernels/quant_matmul.h,
// QuantPath::kLibraryInt8). oneDNN's u8 × s8 → s32 brgemm kernels (AVX512-VNNI, AMX int8 where
// the CPU has it) run the integer products near the machine's int8 peak; per-32 activation
// scales (the integer kernel's) would break the products into 32-deep pieces, so A gets one scale
// per row, and each row is sent in two int8 levels:
//
//   x = d·q₁ + e·q₂,  d = max|x_row| / 127,  q₁ = round(x / d),  e = d / 254,  q₂ = round((x -
//   d·q₁) / e)
//
// (|x - d·q₁| ≤ d/2, so |q₂| ≤ 127). The error per value is e/2 = max|x_row| / 64516, about 15
// bits, for twice the integer products (both levels are rows of one oneDNN call). One level alone
// (7 bits) was not enough: measured on SmolLM2 at six weight points (bench/README.md, "int8
// robustness"), per-row int8 moved the LoraHub objective 3-9 % off f32, and LLM.int8()'s outlier
// columns (> 6x the median column's max |x| multiplied in f32) only brought that to ±4 %. Worse,
// the error was chaotic: each layer's rounding decisions depend on the previous layer's rounding,
// so a last-bit change of one activation (a vectorized exp) redrew the whole error (-0.4 % →
// +3.3 % at one point), and the outlier threshold added its own jumps (a column flipping between
// f32 and int8 rescales every row). With 15 bits the rounding noise is below the int8 weights'
// own error (about 1 %, fixed at load and smooth in the activations), and no threshold is left.
//
// A row is sent as u = q + 128 so that oneDNN runs its native u8 × s8 kernel without the
// compensation pass that s8 sources need; the 128 · Σq_w of each weight row (QuantMatrix::row_sum,
// made at quantization) is subtracted exactly in the epilogue, which also applies d_i, e_i,
// scale_j and beta.
#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>
#include <tuple>
#include <vector>

#include "core/error.h"
#include "kernels/dnnl_engine.h"
#include "kernels/matmul.h"
#include "kernels/quant_matmul.h"

namespace lorahub {

#ifdef LORAHUB_HAVE_DNNL
struct Int8Pack {
  dnnl::memory::desc md;  // oneDNN's preferred layout of Wᵀ [k, n]
  std::vector<uint8_t> bytes;
};

namespace {

// The second level's step is the first's / 254: the first level's rounding leaves at most half a
// step, which q₂ spans with ±127.
constexpr float kSecondLevel = 254.0f;

using tag = dnnl::memory::format_tag;
using dt = dnnl::memory::data_type;

// The scratchpad is ours (a buffer reused per thread): oneDNN's own is allocated per call, and
// its page faults cost a tenth of a large product.
dnnl::matmul::primitive_desc int8_matmul_pd(int64_t m, const dnnl::memory::desc& b_md) {
  dnnl::memory::desc a_md({m, b_md.dims()[0]}, dt::u8, tag::ab);
  dnnl::memory::desc c_md({m, b_md.dims()[1]}, dt::s32, tag::ab);
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  return dnnl::matmul::primitive_desc(dnnl::matmul::desc(a_md, b_md, c_md), attr, cpu_engine());
}

// W [n, k] row-major is Wᵀ [k, n] column-major.
dnnl::memory::desc plain_weights(int64_t n, int64_t k) {
  return dnnl::memory::desc({k, n}, dt::s8, tag::ba);
}

struct Int8Matmul {
  dnnl::memory::desc a_md, b_md, c_md, scratch_md;
  dnnl::matmul primitive;
  bool packed;  // takes QuantMatrix::library_pack
};

// One compiled primitive per shape (as the bf16 path: building one costs tens of microseconds).
// The packed weights where oneDNN accepts their layout for this many rows, else the plain ones.
const Int8Matmul& int8_matmul(int64_t m, const QuantMatrix& b) {
  const int64_t n = b.rows, k = b.cols;
  thread_local std::map<std::tuple<int64_t, int64_t, int64_t, bool>, Int8Matmul> cache;
  const bool have_pack = b.library_pack != nullptr;
  const auto key = std::make_tuple(m, n, k, have_pack);
  if (auto it = cache.find(key); it != cache.end()) return it->second;
  auto make = [&](const dnnl::memory::desc& b_md, bool packed) {
    auto pd = int8_matmul_pd(m, b_md);
    if (cache.size() > 4096) cache.clear();  // shapes vary with batch lengths; keep it bounded
    return &cache
                .emplace(key, Int8Matmul{pd.src_desc(), b_md, pd.dst_desc(), pd.scratchpad_desc(),
                                         dnnl::matmul(pd), packed})
                .first->second;
  };
  if (have_pack) {
    try {
      return *make(b.library_pack->md, true);
    } catch (const dnnl::error&) {  // no implementation for this layout at this m
    }
  }
  return *make(plain_weights(n, k), false);
}

// c[m, b.rows] (s32) = u[m, b.cols] (u8) · bᵀ (s8) through oneDNN's cached primitive for m rows
// of b (its packed copy when it has one), with our per-thread scratchpad; on the calling thread.
void run_int8_product(int64_t m, const uint8_t* u, const QuantMatrix& b, int32_t* c) {
  const Int8Matmul& mm = int8_matmul(m, b);
  dnnl::engine& engine = cpu_engine();
  dnnl::memory a_mem(mm.a_md, engine, const_cast<uint8_t*>(u));
  const uint8_t* w = mm.packed ? b.library_pack->bytes.data() : b.data.data();
  dnnl::memory b_mem(mm.b_md, engine, const_cast<uint8_t*>(w));
  dnnl::memory c_mem(mm.c_md, engine, c);
  thread_local std::vector<uint8_t> scratch;
  scratch.resize(std::max<size_t>(scratch.size(), mm.scratch_md.get_size()));
  dnnl::memory s_mem(mm.scratch_md, engine, scratch.data());
  mm.primitive.execute(thread_stream(), {{DNNL_ARG_SRC, a_mem},
                                         {DNNL_ARG_WEIGHTS, b_mem},
                                         {DNNL_ARG_DST, c_mem},
                                         {DNNL_ARG_SCRATCHPAD, s_mem}});
  thread_stream().wait();
}

// Rows i < m of u get q₁ + 128 of A's row i, rows m + i get q₂ + 128; d[i] is the row's first
// step (the second is d[i] / 254).
void quantize_rows_two_levels(const float* a, int64_t m, int64_t k, uint8_t* __restrict u,
                              float* __restrict d) {
#pragma omp parallel for schedule(static) if (m * k >= (1 << 16))
  for (int64_t i = 0; i < m; ++i) {
    const float* __restrict row = a + i * k;
    float amax = 0.0f;
#pragma omp simd reduction(max : amax)
    for (int64_t t = 0; t < k; ++t) amax = std::max(amax, std::fabs(row[t]));
    const float step = amax / 127.0f, fine = step / kSecondLevel;
    const float inv = amax > 0.0f ? 1.0f / step : 0.0f, inv_fine = amax > 0.0f ? 1.0f / fine : 0.0f;
    d[i] = step;
    uint8_t* __restrict u1 = u + i * k;
    uint8_t* __restrict u2 = u + (m + i) * k;
#pragma omp simd
    for (int64_t t = 0; t < k; ++t) {
      const float q1 = std::nearbyint(row[t] * inv);
      const float q2 = std::nearbyint((row[t] - q1 * step) * inv_fine);
      u1[t] = static_cast<uint8_t>(static_cast<int>(q1) + 128);
      u2[t] = static_cast<uint8_t>(static_cast<int>(std::clamp(q2, -127.0f, 127.0f)) + 128);
    }
  }
}

}  // namespace

bool int8_library_available() {
  return true;
}

void pack_int8_for_library(QuantMatrix& m) {
  if (m.format != QuantFormat::I8 || m.rows == 0 || m.cols == 0) return;
  // The layout oneDNN prefers for a mid-sized m (it is the same from 17 to thousands of rows).
  const auto pd = int8_matmul_pd(64, dnnl::memory::desc({m.cols, m.rows}, dt::s8, tag::any));
  auto pack = std::make_shared<Int8Pack>();
  pack->md = pd.weights_desc();
  if (pack->md == plain_weights(m.rows, m.cols)) return;  // nothing to gain
  pack->bytes.resize(pack->md.get_size());
  dnnl::engine& engine = cpu_engine();
  dnnl::memory src(plain_weights(m.rows, m.cols), engine, m.data.data());
  dnnl::memory dst(pack->md, engine, pack->bytes.data());
  dnnl::reorder(src, dst).execute(thread_stream(), src, dst);
  thread_stream().wait();
  m.library_pack = std::move(pack);
}

void matmul_int8_library(const float* a, const QuantMatrix& b, float* c, int64_t m, float beta) {
  check(b.format == QuantFormat::I8 && static_cast<int64_t>(b.row_sum.size()) == b.rows,
        "int8 matmul: oneDNN's path takes I8 weights with their row sums");
  if (m == 0 || b.rows == 0) return;
  const int64_t n = b.rows, k = b.cols;
  // The caller's buffers; the OpenMP threads below reach them through these references (a
  // thread_local named inside the parallel region would be each worker's own, empty one).
  thread_local std::vector<uint8_t> u_buffer;
  thread_local std::vector<float> d_buffer;
  thread_local std::vector<int32_t> dot_buffer;
  std::vector<uint8_t>& u = u_buffer;
  std::vector<float>& d = d_buffer;
  std::vector<int32_t>& dot = dot_buffer;
  u.resize(static_cast<size_t>(2 * m * k));
  d.resize(static_cast<size_t>(m));
  dot.resize(static_cast<size_t>(2 * m * n));
  quantize_rows_two_levels(a, m, k, u.data(), d.data());

  run_int8_product(2 * m, u.data(), b, dot.data());

  // Two-level weights (QuantMatrix::residual): the first activation level against the second
  // weight level, u₁ · q₂ (the u₂ · q₂ term is below both levels' rounding: d·s / 254², dropped),
  // 1.5x the integer products of one weight level.
  thread_local std::vector<int32_t> fine_buffer;
  std::vector<int32_t>& fine = fine_buffer;
  if (b.residual != nullptr) {
    fine.resize(static_cast<size_t>(m * n));
    run_int8_product(m, u.data(), *b.residual, fine.data());
  }

  const float* scale = b.row_scale.data();
  const int32_t* sum = b.row_sum.data();
  if (b.residual != nullptr) {
    const float* fine_scale = b.residual->row_scale.data();
    const int32_t* fine_sum = b.residual->row_sum.data();
#pragma omp parallel for schedule(static) if (m * n >= (1 << 16))
    for (int64_t i = 0; i < m; ++i) {
      const int32_t* s1 = dot.data() + i * n;
      const int32_t* s2 = dot.data() + (m + i) * n;
      const int32_t* s3 = fine.data() + i * n;
      float* out = c + i * n;
      const float d1 = d[i], d2 = d[i] / kSecondLevel;
#pragma omp simd
      for (int64_t j = 0; j < n; ++j) {
        const float v = (static_cast<float>(s1[j] - 128 * sum[j]) * d1 +
                         static_cast<float>(s2[j] - 128 * sum[j]) * d2) *
                            scale[j] +
                        static_cast<float>(s3[j] - 128 * fine_sum[j]) * d1 * fine_scale[j];
        out[j] = beta == 0.0f ? v : v + beta * out[j];
      }
    }
    return;
  }
#pragma omp parallel for schedule(static) if (m * n >= (1 << 16))
  for (int64_t i = 0; i < m; ++i) {
    const int32_t* s1 = dot.data() + i * n;
    const int32_t* s2 = dot.data() + (m + i) * n;
    float* out = c + i * n;
    const float d1 = d[i], d2 = d[i] / kSecondLevel;
    if (beta == 0.0f) {
#pragma omp simd
      for (int64_t j = 0; j < n; ++j)
        out[j] = (static_cast<float>(s1[j] - 128 * sum[j]) * d1 +
                  static_cast<float>(s2[j] - 128 * sum[j]) * d2) *
                 scale[j];
    } else {
#pragma omp simd
      for (int64_t j = 0; j < n; ++j)
        out[j] = (static_cast<float>(s1[j] - 128 * sum[j]) * d1 +
                  static_cast<float>(s2[j] - 128 * sum[j]) * d2) *
                     scale[j] +
                 beta * out[j];
    }
  }
}

#else
bool int8_library_available() {
  return false;
}

void matmul_int8_library(const float*, const QuantMatrix&, float*, int64_t, float) {
  fail("int8 matmul: this build has no oneDNN");
}

void pack_int8_for_library(QuantMatrix&) {}
#endif

}  // namespace lorahub
