// Error checks for CUDA runtime and cuBLAS calls in the CUDA backend.
//
// The Backend interface has no error channel (see kernels/check.h): a failed
// CUDA call is unrecoverable here, so it prints file:line, the call and the
// error string, then aborts. Kernel launches are followed by
// ANVIL_CUDA_CHECK(cudaGetLastError()) so launch-configuration errors name
// the op that caused them.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <cstdio>
#include <cstdlib>

#define ANVIL_CUDA_CHECK(expr)                                                 \
  do {                                                                         \
    const cudaError_t _anvil_err = (expr);                                     \
    if (_anvil_err != cudaSuccess) {                                           \
      std::fprintf(stderr, "%s:%d: CUDA error %s in %s\n", __FILE__, __LINE__, \
                   cudaGetErrorString(_anvil_err), #expr);                     \
      std::abort();                                                            \
    }                                                                          \
  } while (0)

#define ANVIL_CUBLAS_CHECK(expr)                                                          \
  do {                                                                                    \
    const cublasStatus_t _anvil_st = (expr);                                              \
    if (_anvil_st != CUBLAS_STATUS_SUCCESS) {                                             \
      std::fprintf(stderr, "%s:%d: cuBLAS error %d (%s) in %s\n", __FILE__, __LINE__,     \
                   static_cast<int>(_anvil_st), cublasGetStatusString(_anvil_st), #expr); \
      std::abort();                                                                       \
    }                                                                                     \
  } while (0)

#define ANVIL_CUDA_LAUNCH_CHECK() ANVIL_CUDA_CHECK(cudaGetLastError())
