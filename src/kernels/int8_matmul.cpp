// I8 weights against many rows of A through oneDNN's int8 matmul (kernels/quant_matmul.h,
// QuantPath::kLibraryInt8). oneDNN's u8 × s8 → s32 brgemm kernels (AVX512-VNNI, AMX int8 where
// the CPU has it) run the integer products near the machine's int8 peak; per-32 activation
// scales (the integer kernel's) would break the products into 32-deep pieces, so A gets one scale
// per row, and the columns that would flatten the rest of a row are taken out of it:
//
// Outlier columns (LLM.int8(), Dettmers et al. 2022): language models carry a few hidden
// features whose activations are 10-100x the others in every row; one scale per row then leaves
// the other values a few int8 steps. A column whose largest |x| over the rows exceeds
// kOutlierRatio × the median column's is multiplied in f32 (at most k / kOutlierShare columns,
// the largest), the rest in int8. Error: half a step of the row's non-outlier scale per value.
//
// A row i is sent as u = q + 128 (q = round(x / d_i), |q| ≤ 127) so that oneDNN runs its native
// u8 × s8 kernel without the compensation pass that s8 sources need; the 128 · Σq_w of each
// weight row (QuantMatrix::row_sum, made at quantization) is subtracted exactly in the epilogue,
// which also applies d_i · scale_j and beta.
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
namespace {

constexpr float kOutlierRatio = 6.0f;
constexpr int64_t kOutlierShare = 32;

}  // namespace

struct Int8Pack {
  dnnl::memory::desc md;  // oneDNN's preferred layout of Wᵀ [k, n]
  std::vector<uint8_t> bytes;
};

namespace {

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

// The columns of A[m, k] multiplied in f32, ascending.
std::vector<int64_t> outlier_columns(const float* a, int64_t m, int64_t k) {
  std::vector<float> amax(static_cast<size_t>(k), 0.0f);
  float* __restrict col = amax.data();
  for (int64_t i = 0; i < m; ++i) {
    const float* __restrict row = a + i * k;
#pragma omp simd
    for (int64_t t = 0; t < k; ++t) col[t] = std::max(col[t], std::fabs(row[t]));
  }
  std::vector<float> sorted = amax;
  std::nth_element(sorted.begin(), sorted.begin() + k / 2, sorted.end());
  const float limit = kOutlierRatio * sorted[static_cast<size_t>(k / 2)];
  std::vector<int64_t> cols;
  for (int64_t t = 0; t < k; ++t)
    if (amax[t] > limit) cols.push_back(t);
  const size_t cap = static_cast<size_t>(k / kOutlierShare);
  if (cols.size() > cap) {  // keep the largest
    std::nth_element(cols.begin(), cols.begin() + cap, cols.end(),
                     [&](int64_t x, int64_t y) { return amax[x] > amax[y]; });
    cols.resize(cap);
    std::sort(cols.begin(), cols.end());
  }
  return cols;
}

// u[i, t] = round(x / d_i) + 128 with d_i = max |x| of row i outside the outlier columns / 127;
// keep[t] is 0 in the outlier columns (they carry q = 0, u = 128), else 1. Written as
// multiplications by keep, not branches, so that the loops vectorize.
void quantize_rows(const float* a, int64_t m, int64_t k, const float* __restrict keep,
                   uint8_t* __restrict u, float* __restrict d) {
#pragma omp parallel for schedule(static) if (m * k >= (1 << 16))
  for (int64_t i = 0; i < m; ++i) {
    const float* __restrict row = a + i * k;
    float amax = 0.0f;
#pragma omp simd reduction(max : amax)
    for (int64_t t = 0; t < k; ++t) amax = std::max(amax, std::fabs(row[t]) * keep[t]);
    const float inv = amax > 0.0f ? 127.0f / amax : 0.0f;
    d[i] = amax / 127.0f;
    uint8_t* __restrict dst = u + i * k;
#pragma omp simd
    for (int64_t t = 0; t < k; ++t)
      dst[t] = static_cast<uint8_t>(static_cast<int>(std::nearbyint(row[t] * inv * keep[t])) + 128);
  }
}

// C += A[:, cols] · W[:, cols]ᵀ in f32.
void add_outlier_products(const float* a, const QuantMatrix& b, const std::vector<int64_t>& cols,
                          float* c, int64_t m) {
  const int64_t n = b.rows, k = b.cols, o = static_cast<int64_t>(cols.size());
  std::vector<float> a_o(static_cast<size_t>(m * o)), w_o(static_cast<size_t>(n * o));
  for (int64_t i = 0; i < m; ++i)
    for (int64_t t = 0; t < o; ++t) a_o[i * o + t] = a[i * k + cols[t]];
  const auto* q = reinterpret_cast<const int8_t*>(b.data.data());
  for (int64_t j = 0; j < n; ++j)
    for (int64_t t = 0; t < o; ++t)
      w_o[j * o + t] = static_cast<float>(q[j * k + cols[t]]) * b.row_scale[j];
  matmul_abt(a_o.data(), w_o.data(), c, m, n, o, 1.0f);
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
  const std::vector<int64_t> cols = outlier_columns(a, m, k);
  std::vector<float> keep(static_cast<size_t>(k), 1.0f);
  for (int64_t t : cols) keep[t] = 0.0f;
  // The caller's buffers; the OpenMP threads below reach them through these references (a
  // thread_local named inside the parallel region would be each worker's own, empty one).
  thread_local std::vector<uint8_t> u_buffer;
  thread_local std::vector<float> d_buffer;
  thread_local std::vector<int32_t> dot_buffer;
  std::vector<uint8_t>& u = u_buffer;
  std::vector<float>& d = d_buffer;
  std::vector<int32_t>& dot = dot_buffer;
  u.resize(static_cast<size_t>(m * k));
  d.resize(static_cast<size_t>(m));
  dot.resize(static_cast<size_t>(m * n));
  quantize_rows(a, m, k, keep.data(), u.data(), d.data());

  const Int8Matmul& mm = int8_matmul(m, b);
  dnnl::engine& engine = cpu_engine();
  dnnl::memory a_mem(mm.a_md, engine, u.data());
  const uint8_t* w = mm.packed ? b.library_pack->bytes.data() : b.data.data();
  dnnl::memory b_mem(mm.b_md, engine, const_cast<uint8_t*>(w));
  dnnl::memory c_mem(mm.c_md, engine, dot.data());
  thread_local std::vector<uint8_t> scratch;
  scratch.resize(std::max<size_t>(scratch.size(), mm.scratch_md.get_size()));
  dnnl::memory s_mem(mm.scratch_md, engine, scratch.data());
  mm.primitive.execute(thread_stream(), {{DNNL_ARG_SRC, a_mem},
                                         {DNNL_ARG_WEIGHTS, b_mem},
                                         {DNNL_ARG_DST, c_mem},
                                         {DNNL_ARG_SCRATCHPAD, s_mem}});
  thread_stream().wait();

  const float* scale = b.row_scale.data();
  const int32_t* sum = b.row_sum.data();
#pragma omp parallel for schedule(static) if (m * n >= (1 << 16))
  for (int64_t i = 0; i < m; ++i) {
    const int32_t* s = dot.data() + i * n;
    float* out = c + i * n;
    const float di = d[i];
    if (beta == 0.0f) {
#pragma omp simd
      for (int64_t j = 0; j < n; ++j)
        out[j] = static_cast<float>(s[j] - 128 * sum[j]) * (di * scale[j]);
    } else {
#pragma omp simd
      for (int64_t j = 0; j < n; ++j)
        out[j] = static_cast<float>(s[j] - 128 * sum[j]) * (di * scale[j]) + beta * out[j];
    }
  }
  if (!cols.empty()) add_outlier_products(a, b, cols, c, m);
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
