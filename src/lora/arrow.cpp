#include "lora/arrow.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "lora/compose.h"

// LAPACK's double-precision divide-and-conquer SVD (OpenBLAS ships LAPACK); the trailing
// argument is the hidden length of the jobz string in the gfortran calling convention.
extern "C" void dgesdd_(const char* jobz, const int* m, const int* n, double* a, const int* lda,
                        double* s, double* u, const int* ldu, double* vt, const int* ldvt,
                        double* work, const int* lwork, int* iwork, int* info, size_t jobz_len);

namespace lorahub {
namespace {

struct Svd {
  std::vector<double> u, s, vt;  // column-major U [m, k], S [k], Vᵀ [k, n]; k = min(m, n)
  int m = 0, n = 0, k = 0;
};

// Reduced SVD of a column-major [m, n] matrix (overwritten).
Svd svd(std::vector<double> a, int m, int n) {
  Svd r;
  r.m = m;
  r.n = n;
  r.k = std::min(m, n);
  r.u.resize(static_cast<size_t>(m) * r.k);
  r.s.resize(static_cast<size_t>(r.k));
  r.vt.resize(static_cast<size_t>(r.k) * n);
  std::vector<int> iwork(8 * static_cast<size_t>(r.k));
  int info = 0, lwork = -1;
  double query = 0;
  dgesdd_("S", &m, &n, a.data(), &m, r.s.data(), r.u.data(), &m, r.vt.data(), &r.k, &query, &lwork,
          iwork.data(), &info, 1);
  lwork = static_cast<int>(query);
  std::vector<double> work(static_cast<size_t>(std::max(1, lwork)));
  dgesdd_("S", &m, &n, a.data(), &m, r.s.data(), r.u.data(), &m, r.vt.data(), &r.k, work.data(),
          &lwork, iwork.data(), &info, 1);
  check(info == 0, "arrow: SVD of a [{}, {}] LoRA factor failed (LAPACK dgesdd info {})", m, n,
        info);
  return r;
}

// GenKnowSub: every task delta of a layer minus the mean A and mean B of the general modules.
void subtract_general(LoraMap& experts_by_module, const std::vector<LoraMap>& general,
                      const std::string& layer) {
  const LoraDelta& first = general[0].at(layer)[0];
  std::vector<double> mean_a(first.A.size(), 0.0), mean_b(first.B.size(), 0.0);
  for (const LoraMap& g : general) {
    const LoraDelta& d = g.at(layer)[0];
    for (size_t i = 0; i < mean_a.size(); ++i) mean_a[i] += d.A[i];
    for (size_t i = 0; i < mean_b.size(); ++i) mean_b[i] += d.B[i];
  }
  const double n = static_cast<double>(general.size());
  for (LoraDelta& d : experts_by_module.at(layer)) {
    for (size_t i = 0; i < mean_a.size(); ++i) d.A[i] -= static_cast<float>(mean_a[i] / n);
    for (size_t i = 0; i < mean_b.size(); ++i) d.B[i] -= static_cast<float>(mean_b[i] / n);
  }
}

}  // namespace

std::vector<float> top_right_singular_vector(const std::vector<float>& A,
                                             const std::vector<float>& B, int64_t r, int64_t in,
                                             int64_t out) {
  // A as a column-major [r, in] matrix.
  std::vector<double> a(static_cast<size_t>(r * in));
  for (int64_t i = 0; i < r; ++i)
    for (int64_t j = 0; j < in; ++j) a[j * r + i] = A[i * in + j];
  const Svd sa = svd(std::move(a), static_cast<int>(r), static_cast<int>(in));
  // K = B·U·Σ [out, k], column-major.
  const int k = sa.k;
  std::vector<double> kmat(static_cast<size_t>(out) * k, 0.0);
  for (int c = 0; c < k; ++c)
    for (int64_t o = 0; o < out; ++o) {
      double v = 0;
      for (int64_t j = 0; j < r; ++j) v += B[o * r + j] * sa.u[c * r + j];
      kmat[c * out + o] = v * sa.s[c];
    }
  std::vector<float> proto(static_cast<size_t>(in), 0.0f);
  const Svd sk = svd(std::move(kmat), static_cast<int>(out), k);
  if (sk.s.empty() || sk.s[0] == 0.0) return proto;  // B·A = 0: PEFT's iteration gives 0 too
  // z = first row of Vᵀ(K) (length k); V·z = Σ_c z[c] · (row c of Vᵀ(A)).
  double norm = 0;
  std::vector<double> v(static_cast<size_t>(in), 0.0);
  for (int c = 0; c < k; ++c) {
    const double z = sk.vt[static_cast<size_t>(c) * sk.k];  // Vᵀ(K)[0, c], column-major [k, k]
    for (int64_t j = 0; j < in; ++j) v[j] += z * sa.vt[j * k + c];
  }
  for (double x : v) norm += x * x;
  norm = std::sqrt(norm);
  for (int64_t j = 0; j < in; ++j) proto[j] = static_cast<float>(v[j] / norm);
  return proto;
}

LoraRouterMap arrow_router(const ModuleSet& tasks, const ModuleSet* general,
                           const ArrowOptions& options) {
  check(options.top_k >= 1 && options.top_k <= static_cast<int64_t>(tasks.size()),
        "arrow: top_k {} must be in [1, {}] (the number of task modules)", options.top_k,
        tasks.size());
  check(options.temperature > 0 && std::isfinite(options.temperature),
        "arrow: temperature {} must be positive", options.temperature);
  // Every task module's deltas, one map entry per layer holding one delta per module.
  LoraMap experts;
  for (const LoraModule& m : tasks.modules())
    for (auto& [layer, deltas] : to_lora_map(m)) experts[layer].push_back(std::move(deltas.at(0)));
  if (general != nullptr) {
    std::vector<LoraMap> general_maps;
    for (const LoraModule& g : general->modules()) {
      check_compatible(tasks[0], g);
      general_maps.push_back(to_lora_map(g));
    }
    for (const auto& [layer, deltas] : experts) subtract_general(experts, general_maps, layer);
  }
  LoraRouterMap routers;
  for (auto& [layer, deltas] : experts) {
    LoraRouter& router = routers[layer];
    router.top_k = options.top_k;
    router.temperature = static_cast<float>(options.temperature);
    for (const LoraDelta& d : deltas) {
      const std::vector<float> p = top_right_singular_vector(d.A, d.B, d.r, d.in, d.out);
      router.prototypes.insert(router.prototypes.end(), p.begin(), p.end());
    }
    router.experts = std::move(deltas);
  }
  return routers;
}

}  // namespace lorahub
