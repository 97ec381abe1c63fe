// Thread control for OpenBLAS (see blas.h).
#include "kernels/cpu/blas.h"

#include <omp.h>

namespace anvil::kernels::cpu {

bool BlasUsesOpenMp() {
  static const bool omp = openblas_get_parallel() == 2;
  return omp;
}

void SetBlasThreads(int nt) {
  if (BlasUsesOpenMp()) {
    if (omp_get_max_threads() != nt) omp_set_num_threads(nt);
  } else if (openblas_get_num_threads() != nt) {
    openblas_set_num_threads(nt);
  }
}

BlasSingleThreadScope::BlasSingleThreadScope() : saved_(0) {
  if (!BlasUsesOpenMp()) {
    saved_ = openblas_get_num_threads();
    if (saved_ != 1) openblas_set_num_threads(1);
  }
}

BlasSingleThreadScope::~BlasSingleThreadScope() {
  if (saved_ > 1) openblas_set_num_threads(saved_);
}

}  // namespace anvil::kernels::cpu
