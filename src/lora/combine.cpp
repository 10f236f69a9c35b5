#include "lora/combine.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <random>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "core/error.h"
#include "kernels/matmul.h"
#include "lora/compose.h"

// LAPACK's single-precision divide-and-conquer SVD (OpenBLAS ships LAPACK); the trailing
// argument is the hidden length of the jobz string in the gfortran calling convention.
extern "C" void sgesdd_(const char* jobz, const int* m, const int* n, float* a, const int* lda,
                        float* s, float* u, const int* ldu, float* vt, const int* ldvt, float* work,
                        const int* lwork, int* iwork, int* info, size_t jobz_len);

// The float64 routines of the truncated SVD (combine_svd): the Gram matrix (dsyrk) and only its
// leading eigenpairs (dsyevr, MRRR), again in the gfortran convention.
extern "C" void dsyrk_(const char* uplo, const char* trans, const int* n, const int* k,
                       const double* alpha, const double* a, const int* lda, const double* beta,
                       double* c, const int* ldc, size_t uplo_len, size_t trans_len);
extern "C" void dsyevr_(const char* jobz, const char* range, const char* uplo, const int* n,
                        double* a, const int* lda, const double* vl, const double* vu,
                        const int* il, const int* iu, const double* abstol, int* m, double* w,
                        double* z, const int* ldz, int* isuppz, double* work, const int* lwork,
                        int* iwork, const int* liwork, int* info, size_t jobz_len, size_t range_len,
                        size_t uplo_len);

namespace lorahub {
namespace {

struct MethodInfo {
  CombineMethod method;
  std::string name;
};

const std::vector<MethodInfo>& method_table() {
  static const std::vector<MethodInfo> table = {
      {CombineMethod::kLoraHub, "lorahub"},
      {CombineMethod::kLinear, "linear"},
      {CombineMethod::kCat, "cat"},
      {CombineMethod::kSvd, "svd"},
      {CombineMethod::kTies, "ties"},
      {CombineMethod::kTiesSvd, "ties_svd"},
      {CombineMethod::kDareLinear, "dare_linear"},
      {CombineMethod::kDareLinearSvd, "dare_linear_svd"},
      {CombineMethod::kDareTies, "dare_ties"},
      {CombineMethod::kDareTiesSvd, "dare_ties_svd"},
      {CombineMethod::kMagnitudePrune, "magnitude_prune"},
      {CombineMethod::kMagnitudePruneSvd, "magnitude_prune_svd"},
  };
  return table;
}

// How merge_utils merges a stack of task tensors (the method without its _svd suffix).
enum class Merge { kArithmetic, kTies, kDareLinear, kDareTies, kMagnitude };

Merge merge_of(CombineMethod m) {
  switch (m) {
    case CombineMethod::kTies:
    case CombineMethod::kTiesSvd:
      return Merge::kTies;
    case CombineMethod::kDareLinear:
    case CombineMethod::kDareLinearSvd:
      return Merge::kDareLinear;
    case CombineMethod::kDareTies:
    case CombineMethod::kDareTiesSvd:
      return Merge::kDareTies;
    case CombineMethod::kMagnitudePrune:
    case CombineMethod::kMagnitudePruneSvd:
      return Merge::kMagnitude;
    default:
      return Merge::kArithmetic;
  }
}

bool is_svd(CombineMethod m) {
  return m == CombineMethod::kSvd || m == CombineMethod::kTiesSvd ||
         m == CombineMethod::kDareLinearSvd || m == CombineMethod::kDareTiesSvd ||
         m == CombineMethod::kMagnitudePruneSvd;
}

bool needs_density(CombineMethod m) {
  return m != CombineMethod::kLoraHub && m != CombineMethod::kLinear && m != CombineMethod::kCat &&
         m != CombineMethod::kSvd;
}

using Stack = std::vector<std::vector<float>>;  // one task tensor per module, same size

// merge_utils.magnitude_based_pruning: keep the k = int(density·n) largest |values|.
void prune_magnitude(std::vector<float>& t, double density) {
  const size_t k = static_cast<size_t>(density * static_cast<double>(t.size()));
  std::vector<size_t> order(t.size());
  std::iota(order.begin(), order.end(), 0);
  auto larger = [&](size_t a, size_t b) {
    return std::abs(t[a]) != std::abs(t[b]) ? std::abs(t[a]) > std::abs(t[b]) : a < b;
  };
  if (k < order.size()) std::nth_element(order.begin(), order.begin() + k, order.end(), larger);
  for (size_t i = k; i < order.size(); ++i) t[order[i]] = 0.0f;
}

// merge_utils.prune(): density >= 1 keeps the tensor as is (no rescaling either).
void prune(Stack& stack, Merge merge, const CombineOptions& o, const std::string& name) {
  if (merge == Merge::kArithmetic || *o.density >= 1.0) return;
  const double density = *o.density;
  for (size_t i = 0; i < stack.size(); ++i) {
    std::vector<float>& t = stack[i];
    if (merge == Merge::kTies || merge == Merge::kMagnitude) {
      prune_magnitude(t, density);
      continue;
    }
    const std::vector<float> mask = o.drop_mask
                                        ? o.drop_mask(name, i, t.size(), density)
                                        : seeded_drop_mask(o.seed, name, i, t.size(), density);
    check(mask.size() == t.size(), "combine: drop mask for '{}' module {} has {} values, not {}",
          name, i, mask.size(), t.size());
    const float d = static_cast<float>(density);
    for (size_t k = 0; k < t.size(); ++k) t[k] = t[k] * mask[k] / d;  // random_pruning, rescaled
  }
}

// merge_utils.task_arithmetic: Σ vᵢTᵢ, accumulated in module order.
std::vector<float> weighted_sum(const Stack& stack, const std::vector<float>& v) {
  std::vector<float> out(stack[0].size(), 0.0f);
  for (size_t i = 0; i < stack.size(); ++i)
    for (size_t k = 0; k < out.size(); ++k) out[k] += stack[i][k] * v[i];
  return out;
}

float sign_of(float x) {
  return static_cast<float>((x > 0) - (x < 0));
}

// A stack of task tensors with everything that does not depend on the weights done: in PEFT's
// merge_utils, prune() (magnitude or DARE's masks) and calculate_majority_sign_mask read the
// unweighted tensors, so only the weighted sum is left per w (the weight search's evaluations).
struct PreparedStack {
  // The pruned tensors; for TIES also zero where a value's sign disagrees with the elected one.
  Stack values;
  // TIES: per value, how many tensors agree with the elected sign, at least 1 (disjoint_merge's
  // clamped divisor); empty for the other merges.
  std::vector<float> kept;
};

// calculate_majority_sign_mask on the pruned tensors: drops the values that disagree with the
// elected sign and counts those kept. A value of 0 (pruned) agrees with no sign.
void elect_signs(PreparedStack& p, MajoritySign rule) {
  const size_t n = p.values[0].size();
  p.kept.assign(n, 0.0f);
  for (size_t k = 0; k < n; ++k) {
    float magnitude = 0.0f;
    for (const auto& t : p.values) magnitude += rule == MajoritySign::kTotal ? t[k] : sign_of(t[k]);
    const float elected = magnitude >= 0 ? 1.0f : -1.0f;
    for (auto& t : p.values) {
      if (sign_of(t[k]) == elected)
        p.kept[k] += 1.0f;
      else
        t[k] = 0.0f;
    }
    p.kept[k] = std::max(p.kept[k], 1.0f);
  }
}

PreparedStack prepare_stack(Stack stack, Merge merge, const CombineOptions& o,
                            const std::string& name) {
  prune(stack, merge, o, name);
  PreparedStack p{std::move(stack), {}};
  if (merge == Merge::kTies || merge == Merge::kDareTies) elect_signs(p, o.majority_sign);
  return p;
}

// task_arithmetic, or TIES's disjoint_merge: the mean of the weighted values that agree with the
// elected sign. The dropped values add ±0 to the module-order sums, which leaves them as they
// are, so this equals summing the agreeing values alone.
std::vector<float> merge_prepared(const PreparedStack& p, const std::vector<float>& v) {
  std::vector<float> out = weighted_sum(p.values, v);
  for (size_t k = 0; k < p.kept.size(); ++k) out[k] /= p.kept[k];
  return out;
}

// One target layer's tensors across the pool: where its lora_A and lora_B sit in each module.
struct LayerSlots {
  std::string layer;
  size_t a = 0, b = 0;  // indices into LoraModule::tensors (the same in every module)
};

std::vector<LayerSlots> layer_slots(const LoraModule& m) {
  std::vector<LayerSlots> out;
  for (size_t t = 0; t < m.tensors.size(); ++t) {
    const LoraTensor& x = m.tensors[t];
    auto it = std::find_if(out.begin(), out.end(),
                           [&](const LayerSlots& s) { return s.layer == x.layer; });
    if (it == out.end()) it = out.insert(out.end(), LayerSlots{x.layer, t, t});
    (x.is_a ? it->a : it->b) = t;
  }
  for (const LayerSlots& s : out)
    check(m.tensors[s.a].is_a && !m.tensors[s.b].is_a, "{}: layer '{}' lacks lora_A or lora_B",
          m.path, s.layer);
  return out;
}

Stack gather(const ModuleSet& set, size_t tensor) {
  Stack stack;
  for (const LoraModule& m : set.modules()) stack.push_back(m.tensors[tensor].f32());
  return stack;
}

std::vector<float> to_f32(const std::vector<double>& v) {
  return std::vector<float>(v.begin(), v.end());  // torch.tensor(list of floats): float32
}

// The weights of A and B for the per-tensor methods: √|wᵢsᵢ| on both, the sign on A only.
void split_weights(const ModuleSet& set, const std::vector<double>& w, const LayerSlots& s,
                   std::vector<float>& wa, std::vector<float>& wb) {
  wa.clear();
  wb.clear();
  for (size_t i = 0; i < set.size(); ++i) {
    const double ws = w[i] * static_cast<double>(set[i].tensors[s.a].scale);
    wa.push_back(static_cast<float>(std::sqrt(std::abs(ws)) * (ws >= 0 ? 1.0 : -1.0)));
    wb.push_back(static_cast<float>(std::sqrt(std::abs(ws))));  // torch.tensor: float32
  }
}

// cat's w-independent half: B = [B₁ B₂ ...] (columns), [out, Σ rᵢ].
std::vector<float> concatenate_b(const ModuleSet& set, const LayerSlots& s) {
  const int64_t r = set[0].tensors[s.a].shape[0], rows = set[0].tensors[s.b].shape[0];
  const int64_t total = r * static_cast<int64_t>(set.size());
  std::vector<float> b(static_cast<size_t>(rows * total));
  for (size_t i = 0; i < set.size(); ++i) {
    const std::vector<float> bi = set[i].tensors[s.b].f32();
    for (int64_t row = 0; row < rows; ++row)
      for (int64_t c = 0; c < r; ++c)
        b[row * total + static_cast<int64_t>(i) * r + c] = bi[row * r + c];
  }
  return b;
}

// cat's A = [w₁s₁A₁; ...] (rows), [Σ rᵢ, in].
std::vector<float> concatenate_weighted_a(const ModuleSet& set, const Stack& a,
                                          const std::vector<double>& w, const LayerSlots& s) {
  std::vector<float> out;
  for (size_t i = 0; i < set.size(); ++i) {
    const float wi = static_cast<float>(w[i]);
    const float si = static_cast<float>(set[i].tensors[s.a].scale);
    for (float v : a[i]) out.push_back(v * wi * si);  // (A·w)·s, as torch
  }
  return out;
}

// torch.quantile(x, q) with linear interpolation, computed in float32 as torch does.
float quantile(std::vector<float> x, double q) {
  std::sort(x.begin(), x.end());
  const float rank = static_cast<float>(q) * static_cast<float>(x.size() - 1);
  const size_t below = static_cast<size_t>(std::floor(rank));
  const size_t above = std::min(x.size() - 1, static_cast<size_t>(std::ceil(rank)));
  const float weight = rank - static_cast<float>(below);
  const float lo = x[below], hi = x[above];
  return weight < 0.5f ? lo + weight * (hi - lo) : hi - (hi - lo) * (1.0f - weight);  // torch.lerp
}

struct Svd {
  std::vector<float> u, s, vt;  // column-major U [m, k], S [k], Vᵀ [k, n]; k = min(m, n)
  int m = 0, n = 0, k = 0;
};

// Reduced SVD of a row-major [rows, cols] matrix with LAPACK sgesdd.
Svd svd(const std::vector<float>& matrix, int64_t rows, int64_t cols, const std::string& name) {
  Svd r;
  r.m = static_cast<int>(rows);
  r.n = static_cast<int>(cols);
  r.k = std::min(r.m, r.n);
  std::vector<float> a(matrix.size());  // to column-major
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j) a[j * rows + i] = matrix[i * cols + j];
  r.u.resize(static_cast<size_t>(r.m) * r.k);
  r.s.resize(r.k);
  r.vt.resize(static_cast<size_t>(r.k) * r.n);
  std::vector<int> iwork(8 * static_cast<size_t>(r.k));
  int info = 0, lwork = -1;
  float query = 0;
  sgesdd_("S", &r.m, &r.n, a.data(), &r.m, r.s.data(), r.u.data(), &r.m, r.vt.data(), &r.k, &query,
          &lwork, iwork.data(), &info, 1);
  lwork = static_cast<int>(query);
  std::vector<float> work(static_cast<size_t>(std::max(1, lwork)));
  sgesdd_("S", &r.m, &r.n, a.data(), &r.m, r.s.data(), r.u.data(), &r.m, r.vt.data(), &r.k,
          work.data(), &lwork, iwork.data(), &info, 1);
  check(info == 0, "combine: SVD of '{}' [{}, {}] failed (LAPACK sgesdd info {})", name, rows, cols,
        info);
  return r;
}

// The leading `rank` singular triplets of a row-major [rows, cols] matrix, in float64, as the
// factors B = U[:, :rank]·diag(S[:rank]) [rows, rank] and A = Vᵀ[:rank] [rank, cols]: the
// eigenvectors of its Gram matrix on the smaller side (dsyrk), of which dsyevr computes only the
// leading `rank`. A full SVD (sgesdd) computes every singular vector, of which the _svd methods
// keep 8 of 576: this is 2-3x faster than it, and float64 (an eigenvalue λ = σ² holds σ to
// 1e-8 of σ₁, far below f32's rounding; the update B·A = Δ·V·Vᵀ does not divide by σ).
void truncated_svd_f64(const std::vector<float>& matrix, int64_t rows, int64_t cols, int64_t rank,
                       const std::string& name, std::vector<float>& b, std::vector<float>& a) {
  b.assign(static_cast<size_t>(rows * rank), 0.0f);
  a.assign(static_cast<size_t>(rank * cols), 0.0f);
  if (rank == 0) return;
  // Row-major M is column-major X = Mᵀ [cols, rows] with leading dimension cols.
  const std::vector<double> x(matrix.begin(), matrix.end());
  const bool right = cols <= rows;  // eigenvectors of MᵀM (V) or of MMᵀ (U)
  const int n = static_cast<int>(right ? cols : rows), k = static_cast<int>(right ? rows : cols);
  const int ldx = static_cast<int>(cols);
  std::vector<double> gram(static_cast<size_t>(n) * n);
  const double one = 1.0, zero = 0.0;
  dsyrk_("L", right ? "N" : "T", &n, &k, &one, x.data(), &ldx, &zero, gram.data(), &n, 1, 1);
  const int il = n - static_cast<int>(rank) + 1, iu = n;
  int found = 0, info = 0, lwork = -1, liwork = -1, iquery = 0;
  double query = 0, abstol = 0;
  std::vector<double> values(static_cast<size_t>(n)), vectors(static_cast<size_t>(n) * rank);
  std::vector<int> support(2 * static_cast<size_t>(rank));
  dsyevr_("V", "I", "L", &n, gram.data(), &n, &zero, &zero, &il, &iu, &abstol, &found,
          values.data(), vectors.data(), &n, support.data(), &query, &lwork, &iquery, &liwork,
          &info, 1, 1, 1);
  lwork = static_cast<int>(query);
  liwork = iquery;
  std::vector<double> work(static_cast<size_t>(std::max(1, lwork)));
  std::vector<int> iwork(static_cast<size_t>(std::max(1, liwork)));
  dsyevr_("V", "I", "L", &n, gram.data(), &n, &zero, &zero, &il, &iu, &abstol, &found,
          values.data(), vectors.data(), &n, support.data(), work.data(), &lwork, iwork.data(),
          &liwork, &info, 1, 1, 1);
  check(info == 0 && found == rank,
        "combine: SVD of '{}' [{}, {}] failed (LAPACK dsyevr info {}, {} of {} eigenpairs)", name,
        rows, cols, info, found, rank);
  for (int64_t c = 0; c < rank; ++c) {  // dsyevr's order is ascending: the largest is last
    const double* v = &vectors[static_cast<size_t>(rank - 1 - c) * n];
    const double sigma = std::sqrt(std::max(values[rank - 1 - c], 0.0));
    if (right) {  // B[:, c] = M v (= σ u), A[c] = vᵀ
      for (int64_t i = 0; i < rows; ++i) {
        double dot = 0;
        const double* row = &x[static_cast<size_t>(i * cols)];
        for (int64_t j = 0; j < cols; ++j) dot += row[j] * v[j];
        b[i * rank + c] = static_cast<float>(dot);
      }
      for (int64_t j = 0; j < cols; ++j) a[c * cols + j] = static_cast<float>(v[j]);
    } else {  // B[:, c] = σ u, A[c] = uᵀM / σ (a zero row where σ = 0: B[:, c] is 0 there)
      for (int64_t i = 0; i < rows; ++i) b[i * rank + c] = static_cast<float>(sigma * v[i]);
      if (sigma <= 0) continue;
      std::vector<double> row(static_cast<size_t>(cols), 0.0);
      for (int64_t i = 0; i < rows; ++i)
        for (int64_t j = 0; j < cols; ++j) row[j] += v[i] * x[static_cast<size_t>(i * cols + j)];
      for (int64_t j = 0; j < cols; ++j) a[c * cols + j] = static_cast<float>(row[j] / sigma);
    }
  }
}

// A task tensor's nonzero values by position: the pruned deltas of the _svd methods, kept from
// one w to the next (dense, 20 SmolLM2 modules' deltas would hold ~1 GB; at density 0.2 these
// hold a fifth of the values).
struct SparseTensor {
  std::vector<uint32_t> index;
  std::vector<float> value;
};

struct SparseStack {
  std::vector<SparseTensor> tensors;  // one per module
  std::vector<float> kept;            // PreparedStack::kept (TIES), else empty
  size_t size = 0;                    // values per tensor
};

SparseStack sparsify(PreparedStack p) {
  SparseStack out;
  out.size = p.values[0].size();
  check(out.size <= std::numeric_limits<uint32_t>::max(), "combine: a delta of {} values",
        out.size);
  for (std::vector<float>& t : p.values) {
    SparseTensor st;
    for (size_t k = 0; k < t.size(); ++k)
      if (t[k] != 0.0f) {
        st.index.push_back(static_cast<uint32_t>(k));
        st.value.push_back(t[k]);
      }
    out.tensors.push_back(std::move(st));
    std::vector<float>().swap(t);
  }
  out.kept = std::move(p.kept);
  return out;
}

// merge_prepared over the nonzero values alone: the same module-order sums (a pruned value adds
// ±0, which changes no sum), then TIES's divisor.
std::vector<float> merge_sparse(const SparseStack& p, const std::vector<float>& v) {
  std::vector<float> out(p.size, 0.0f);
  for (size_t i = 0; i < p.tensors.size(); ++i) {
    const SparseTensor& t = p.tensors[i];
    const float vi = v[i];
    for (size_t n = 0; n < t.index.size(); ++n) out[t.index[n]] += t.value[n] * vi;
  }
  for (size_t k = 0; k < p.kept.size(); ++k) out[k] /= p.kept[k];
  return out;
}

// The full deltas sᵢBᵢAᵢ of one layer, one per module (get_delta_weight: (B @ A) · s).
Stack layer_deltas(const ModuleSet& set, const LayerSlots& s) {
  const int64_t in = set[0].tensors[s.a].shape[1], rows = set[0].tensors[s.b].shape[0];
  const int64_t r = set[0].tensors[s.a].shape[0];
  Stack deltas;
  for (const LoraModule& m : set.modules()) {
    std::vector<float> d(static_cast<size_t>(rows * in));
    const std::vector<float> a = m.tensors[s.a].f32(), b = m.tensors[s.b].f32();
    matmul_ab(b.data(), a.data(), d.data(), rows, in, r);
    const float scale = m.tensors[s.a].scale;
    for (float& v : d) v *= scale;
    deltas.push_back(std::move(d));
  }
  return deltas;
}

// The _svd methods: merge the full deltas sᵢBᵢAᵢ (`pruned`: their w-independent part prepared
// once, for the methods that prune), then B = U[:, :r]·diag(S[:r]), A = Vᵀ[:r]. Unclamped, the
// SVD is float64 (truncated_svd_f64); with svd_clamp it stays LAPACK's f32 sgesdd, whose
// singular vectors' signs (which the clamp's quantile depends on) agree with torch's.
void combine_svd(const ModuleSet& set, const std::vector<double>& w, const CombineOptions& o,
                 int64_t rank, const LayerSlots& s, const SparseStack* pruned, LoraModule& out) {
  const int64_t in = set[0].tensors[s.a].shape[1], rows = set[0].tensors[s.b].shape[0];
  check(rank <= std::min(in, rows), "combine: svd_rank {} exceeds layer '{}' [{}, {}]", rank,
        s.layer, rows, in);
  const std::string name = s.layer + ".delta";
  const std::vector<float> merged =
      pruned ? merge_sparse(*pruned, to_f32(w))
             : merge_prepared(prepare_stack(layer_deltas(set, s), merge_of(o.method), o, name),
                              to_f32(w));
  std::vector<float> b, a;
  if (!o.svd_clamp) {
    truncated_svd_f64(merged, rows, in, rank, name, b, a);
    out.tensors[s.a].values = std::move(a);
    out.tensors[s.a].shape = {rank, in};
    out.tensors[s.b].values = std::move(b);
    out.tensors[s.b].shape = {rows, rank};
    return;
  }
  const Svd f = svd(merged, rows, in, name);
  b.resize(static_cast<size_t>(rows * rank));
  a.resize(static_cast<size_t>(rank * in));
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t c = 0; c < rank; ++c) b[i * rank + c] = f.u[c * rows + i] * f.s[c];
  for (int64_t c = 0; c < rank; ++c)
    for (int64_t j = 0; j < in; ++j) a[c * in + j] = f.vt[j * f.k + c];
  {  // clamped at the quantile of all factor values
    std::vector<float> dist = b;
    dist.insert(dist.end(), a.begin(), a.end());
    const float hi = quantile(std::move(dist), *o.svd_clamp), lo = -hi;
    for (auto* t : {&a, &b})
      for (float& v : *t) v = std::min(std::max(v, lo), hi);  // torch.clamp(min, max)
  }
  out.tensors[s.a].values = std::move(a);
  out.tensors[s.a].shape = {rank, in};
  out.tensors[s.b].values = std::move(b);
  out.tensors[s.b].shape = {rows, rank};
}

// The new adapter's config as PEFT writes it: r = lora_alpha = the new rank, no patterns.
void set_rank(LoraModule& out, int64_t rank) {
  out.config.r = rank;
  out.config.lora_alpha = static_cast<double>(rank);
  out.config.rank_pattern.clear();
  out.config.alpha_pattern.clear();
  const float scale =
      static_cast<float>(out.config.use_rslora ? rank / std::sqrt(double(rank)) : 1.0);
  for (LoraTensor& t : out.tensors) t.scale = scale;
}

uint64_t fnv1a(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

uint64_t splitmix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

}  // namespace

const std::vector<std::string>& combine_method_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> out;
    for (const MethodInfo& m : method_table()) out.push_back(m.name);
    return out;
  }();
  return names;
}

CombineMethod parse_combine_method(const std::string& name) {
  for (const MethodInfo& m : method_table())
    if (m.name == name) return m.method;
  fail("unknown combination method '{}' (known: {})", name,
       fmt::join(combine_method_names(), ", "));
}

const std::string& combine_method_name(CombineMethod method) {
  for (const MethodInfo& m : method_table())
    if (m.method == method) return m.name;
  fail("combine: unknown method {}", static_cast<int>(method));
}

MajoritySign parse_majority_sign(const std::string& name) {
  if (name == "total") return MajoritySign::kTotal;
  if (name == "frequency") return MajoritySign::kFrequency;
  fail("majority sign method '{}' is not total or frequency", name);
}

void check_combine_options(const CombineOptions& o) {
  const std::string& name = combine_method_name(o.method);
  if (needs_density(o.method)) {
    check(o.density.has_value(),
          "combination method {} needs a density (the fraction of values kept)", name);
    check(*o.density >= 0.0 && *o.density <= 1.0, "density must be in [0, 1], got {}", *o.density);
  }
  check(o.svd_rank >= 0, "SVD rank must be >= 0, got {}", o.svd_rank);
  if (o.svd_clamp)
    check(*o.svd_clamp >= 0.0 && *o.svd_clamp <= 1.0,
          "SVD clamp quantile must be in [0, 1], got {}", *o.svd_clamp);
}

std::vector<float> seeded_drop_mask(uint64_t seed, const std::string& tensor, size_t module,
                                    size_t n, double density) {
  std::mt19937_64 rng(splitmix(splitmix(seed) ^ fnv1a(tensor)) + module);
  std::vector<float> mask(n);
  // Uniform in [0, 1) from the top 53 bits: the same on every standard library, unlike
  // std::bernoulli_distribution.
  for (float& m : mask) m = static_cast<double>(rng() >> 11) * 0x1.0p-53 < density ? 1.0f : 0.0f;
  return mask;
}

// Per target layer, what every w shares: the prepared stacks of lora_A and lora_B (per-tensor
// methods), the modules' A values and the concatenated B (cat), or the pruned full deltas of the
// _svd methods that prune, as nonzero values (the plain svd type recomputes its deltas per w:
// dense, 20 SmolLM2 modules' would hold ~1 GB).
struct Combiner::Prepared {
  struct Layer {
    LayerSlots slots;
    PreparedStack a, b;
    std::optional<SparseStack> deltas;
  };
  std::vector<Layer> layers;
  int64_t rank = 0;
};

Combiner::Combiner(const ModuleSet& set, const CombineOptions& options)
    : set_(set), options_(options) {
  if (options_.method == CombineMethod::kLoraHub) return;
  check(!set.modules().empty(), "combine: no modules");
  if (set.size() == 1) options_.method = CombineMethod::kLinear;  // as PEFT: one adapter -> linear
  check_combine_options(options_);
  check(!set[0].config.fan_in_fan_out,
        "{}: fan_in_fan_out adapters: only the lorahub method combines them", set[0].path);
  auto prepared = std::make_shared<Prepared>();
  const int64_t r = set[0].config.r;
  prepared->rank = r;
  if (options_.method == CombineMethod::kCat) prepared->rank = r * static_cast<int64_t>(set.size());
  if (is_svd(options_.method) && options_.svd_rank > 0) prepared->rank = options_.svd_rank;
  const Merge merge = merge_of(options_.method);
  for (const LayerSlots& s : layer_slots(set[0])) {
    Prepared::Layer layer{s, {}, {}, {}};
    if (options_.method == CombineMethod::kCat) {
      layer.a.values = gather(set, s.a);
      layer.b.values = {concatenate_b(set, s)};
    } else if (is_svd(options_.method)) {
      if (merge != Merge::kArithmetic)
        layer.deltas =
            sparsify(prepare_stack(layer_deltas(set, s), merge, options_, s.layer + ".delta"));
    } else {
      layer.a = prepare_stack(gather(set, s.a), merge, options_, s.layer + ".lora_A");
      layer.b = prepare_stack(gather(set, s.b), merge, options_, s.layer + ".lora_B");
    }
    prepared->layers.push_back(std::move(layer));
  }
  prepared_ = std::move(prepared);
}

LoraModule Combiner::operator()(const std::vector<double>& w) const {
  if (options_.method == CombineMethod::kLoraHub) return compose_module(set_, w);
  check(w.size() == set_.size(), "combine: {} weights for {} modules", w.size(), set_.size());
  check_weights(w, "combine");
  LoraModule out = set_[0];
  for (LoraTensor& t : out.tensors) t.bf16.clear();  // the combined adapter is f32
  const int64_t rank = prepared_->rank;
  std::vector<float> wa, wb;
  for (const Prepared::Layer& layer : prepared_->layers) {
    const LayerSlots& s = layer.slots;
    LoraTensor &a = out.tensors[s.a], &b = out.tensors[s.b];
    if (options_.method == CombineMethod::kCat) {
      a.values = concatenate_weighted_a(set_, layer.a.values, w, s);
      a.shape = {rank, a.shape[1]};
      b.values = layer.b.values[0];
      b.shape = {b.shape[0], rank};
    } else if (is_svd(options_.method)) {
      combine_svd(set_, w, options_, rank, s, layer.deltas ? &*layer.deltas : nullptr, out);
    } else {
      split_weights(set_, w, s, wa, wb);
      a.values = merge_prepared(layer.a, wa);
      b.values = merge_prepared(layer.b, wb);
    }
  }
  set_rank(out, rank);
  return out;
}

LoraModule combine_modules(const ModuleSet& set, const std::vector<double>& w,
                           const CombineOptions& options) {
  return Combiner(set, options)(w);
}

LoraModule adapter_from_modules(const std::vector<std::string>& dirs,
                                const std::vector<double>& weights, const CombineOptions& options,
                                const std::string& base) {
  check(!dirs.empty(), "no adapter given");
  if (dirs.size() == 1 && weights.empty() && options.method == CombineMethod::kLoraHub)
    return load_lora_module(dirs[0], base);
  check(!weights.empty(), "{} modules need weights (one per module)", dirs.size());
  check(weights.size() == dirs.size(), "{} weights for {} modules", weights.size(), dirs.size());
  return combine_modules(ModuleSet::load(dirs, false, base), weights, options);
}

}  // namespace lorahub
