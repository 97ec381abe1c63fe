// The OpenBLAS kernel choice anvil makes before OpenBLAS loads
// (kernels/cpu/blas.cc): on a CPU with the AVX-512 subsets, SkylakeX unless
// ANVIL_BLAS_CORETYPE says otherwise, and the process's OPENBLAS_CORETYPE is
// left as it was given (children inherit the caller's environment).
#include <stdlib.h>

#include <gtest/gtest.h>

#include <string>

#include "kernels/cpu/blas.h"

namespace anvil::kernels::cpu {
namespace {

TEST(BlasCore, Avx512CpusRunTheSkylakeXKernels) {
  const char* choice = getenv("ANVIL_BLAS_CORETYPE");
  if (choice != nullptr && std::string(choice) != "auto") {
    GTEST_SKIP() << "ANVIL_BLAS_CORETYPE=" << choice << " chose the kernels";
  }
  const std::string core = BlasCoreName();
  if (!CpuHasAvx512Subsets()) {
    EXPECT_NE(core, "SkylakeX");
    GTEST_SKIP() << "no AVX-512 on this CPU; OpenBLAS runs " << core;
  }
  EXPECT_EQ(core, "SkylakeX");
}

TEST(BlasCore, OpenBlasIsLoadedAndRunsOpenMpThreads) {
  EXPECT_FALSE(BlasLibraryPath().empty());
  EXPECT_NE(BlasLibraryPath().find("openblas"), std::string::npos) << BlasLibraryPath();
  // scripts/setup.sh installs the OpenMP build; kernels/CMakeLists.txt prefers it.
  EXPECT_TRUE(BlasUsesOpenMp()) << BlasLibraryPath();
}

TEST(BlasCore, TheCallersOpenBlasCoreTypeIsPutBack) {
  // Whatever the environment gave (here, often OPENBLAS_CORETYPE=Haswell),
  // the process environment must not show the value anvil chose.
  const char* env = getenv("OPENBLAS_CORETYPE");
  if (env != nullptr) {
    EXPECT_STRNE(env, "SKYLAKEX");
  }
}

}  // namespace
}  // namespace anvil::kernels::cpu
