// OpenBLAS access for the CPU ops: the cblas header and thread control.
//
// anvil links the OpenMP build of OpenBLAS when it is installed (see
// kernels/CMakeLists.txt). That build runs sgemm single-threaded when called
// inside an OpenMP parallel region and otherwise uses omp_get_max_threads()
// of the calling thread, so one OpenMP thread pool serves both our loops and
// BLAS (no two pools spinning against each other on a small machine).
// With the pthread build these helpers fall back to openblas_set_num_threads.
#pragma once

#include <cblas.h>

namespace anvil::kernels::cpu {

// True when the linked OpenBLAS is the OpenMP build.
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
