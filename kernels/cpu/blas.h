// OpenBLAS access for the CPU ops: sgemm, thread control, kernel choice.
//
// OpenBLAS is not linked: blas.cc loads it (dlopen) before main, after
// choosing which of its kernel families runs (see blas.cc), and the ops call
// it through Sgemm below. <cblas.h> is included for its enums only.
//
// anvil uses the OpenMP build of OpenBLAS when it is installed (see
// kernels/CMakeLists.txt). That build runs sgemm single-threaded when called
// inside an OpenMP parallel region and otherwise uses omp_get_max_threads()
// of the calling thread, so one OpenMP thread pool serves both our loops and
// BLAS (no two pools spinning against each other on a small machine).
// With the pthread build these helpers fall back to openblas_set_num_threads.
#pragma once

#include <cblas.h>

#include <string>

namespace anvil::kernels::cpu {

// cblas_sgemm of the loaded OpenBLAS.
void Sgemm(CBLAS_ORDER order, CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int m, int n, int k,
           float alpha, const float* a, int lda, const float* b, int ldb, float beta, float* c,
           int ldc);

// True when the CPU has AVX-512 F/DQ/BW/VL, which OpenBLAS's SkylakeX
// kernels use (with ANVIL_BLAS_CORETYPE unset, anvil then picks them).
bool CpuHasAvx512Subsets();

// The kernel family OpenBLAS runs ("SkylakeX", "Haswell", ...).
std::string BlasCoreName();

// The file OpenBLAS was loaded from.
std::string BlasLibraryPath();

// True when the loaded OpenBLAS is the OpenMP build.
bool BlasUsesOpenMp();

// Makes BLAS calls issued by this thread, outside a parallel region, use nt
// threads.
void SetBlasThreads(int nt);

// For the lifetime of the scope, BLAS calls made from inside our own OpenMP
// parallel regions run single-threaded (a no-op with the OpenMP build, where
// that is automatic).
class BlasSingleThreadScope {
 public:
  BlasSingleThreadScope();
  ~BlasSingleThreadScope();
  BlasSingleThreadScope(const BlasSingleThreadScope&) = delete;
  BlasSingleThreadScope& operator=(const BlasSingleThreadScope&) = delete;

 private:
  int saved_;  // pthread build: thread count to restore; 0 otherwise
};

}  // namespace anvil::kernels::cpu
