#include "kernels/matmul.h"

#include <cblas.h>
#include <omp.h>

#include <thread>

#include "core/error.h"

#ifdef LORAHUB_HAVE_DNNL
#include <oneapi/dnnl/dnnl.h>
#endif

namespace lorahub {

void gemm(bool transpose_b, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda,
          const float* b, int64_t ldb, float* c, int64_t ldc, float beta) {
  if (m == 0 || n == 0) return;
#ifdef LORAHUB_HAVE_DNNL
  // oneDNN's sgemm runs on the OpenMP threads that the kernels' loops use. OpenBLAS (Debian's
  // pthread build) brings a second pool: its threads and OpenMP's then compete for the same
  // cores, which cost the T5-large forward 3/4 of its speed (37 GFLOP/s against a 164 peak).
  const dnnl_status_t status =
      dnnl_sgemm('N', transpose_b ? 'T' : 'N', m, n, k, 1.0f, a, lda, b, ldb, beta, c, ldc);
  check(status == dnnl_success, "sgemm {}x{}x{} failed in oneDNN (status {})", m, n, k,
        static_cast<int>(status));
  return;
#endif
  cblas_sgemm(CblasRowMajor, CblasNoTrans, transpose_b ? CblasTrans : CblasNoTrans,
              static_cast<blasint>(m), static_cast<blasint>(n), static_cast<blasint>(k), 1.0f, a,
              static_cast<blasint>(lda), b, static_cast<blasint>(ldb), beta, c,
              static_cast<blasint>(ldc));
}

void matmul_abt(const float* a, const float* b, float* c, int64_t m, int64_t n, int64_t k,
                float beta) {
  gemm(true, m, n, k, a, k, b, k, c, n, beta);
}

void matmul_ab(const float* a, const float* b, float* c, int64_t m, int64_t n, int64_t k,
               float beta) {
  gemm(false, m, n, k, a, k, b, n, c, n, beta);
}

void set_compute_threads(int threads) {
  if (threads <= 0) threads = static_cast<int>(std::thread::hardware_concurrency());
  if (threads <= 0) threads = 1;
  openblas_set_num_threads(threads);
  omp_set_num_threads(threads);
}

int compute_threads() {
  return omp_get_max_threads();
}

}  // namespace lorahub
