// Loading OpenBLAS, choosing its kernels, thread control (see blas.h).
//
// OpenBLAS picks its kernels once, when it is loaded, from the CPU model it
// recognises or from OPENBLAS_CORETYPE. Debian 12's OpenBLAS (0.3.21)
// predates AMD Zen 4/5 and gives them its AVX2 (Haswell) kernels, and the
// machines this project runs on also pin OPENBLAS_CORETYPE=Haswell in the
// environment; yet its AVX-512 (SkylakeX) sgemm runs about 1.9x faster on
// their Zen 5 cores (train_bench with ANVIL_BLAS_CORETYPE=openblas shows the
// other figure). OpenBLAS is an internal part of anvil's CPU backend, so
// anvil makes that choice itself:
//   ANVIL_BLAS_CORETYPE unset or "auto": SkylakeX where the CPU has the
//     AVX-512 subsets those kernels use, else OpenBLAS's own choice;
//   "openblas": OpenBLAS's own choice (OPENBLAS_CORETYPE or detection);
//   any other value: that OpenBLAS core type (e.g. HASWELL).
// The choice is passed in OPENBLAS_CORETYPE while OpenBLAS loads, which is
// why it is loaded with dlopen rather than linked (a linked OpenBLAS is
// initialised before any of our code runs), and the caller's value is put
// back afterwards, so child processes see the environment they were given.
// It happens in a static initialiser, before main and before any thread.
// ANVIL_OPENBLAS_LIBRARY names another OpenBLAS file to load.
#include "kernels/cpu/blas.h"

#include <dlfcn.h>
#include <omp.h>
#include <stdlib.h>

#include <cstdio>
#include <cstring>
#include <optional>
#include <string>

#ifndef ANVIL_OPENBLAS_LIBRARY
#define ANVIL_OPENBLAS_LIBRARY "libopenblas.so.0"
#endif

namespace anvil::kernels::cpu {
namespace {

struct OpenBlas {
  std::string path;
  decltype(&cblas_sgemm) sgemm = nullptr;
  decltype(&openblas_get_parallel) get_parallel = nullptr;
  decltype(&openblas_get_num_threads) get_num_threads = nullptr;
  decltype(&openblas_set_num_threads) set_num_threads = nullptr;
  decltype(&openblas_get_corename) get_corename = nullptr;
};

// The OPENBLAS_CORETYPE to load with; nullopt leaves the environment alone.
std::optional<std::string> ChosenCoreType() {
  const char* want = getenv("ANVIL_BLAS_CORETYPE");
  if (want == nullptr || want[0] == '\0' || strcmp(want, "auto") == 0) {
    if (CpuHasAvx512Subsets()) return std::string("SKYLAKEX");
    return std::nullopt;
  }
  if (strcmp(want, "openblas") == 0) return std::nullopt;
  return std::string(want);
}

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "anvil: cannot use OpenBLAS: %s\n", what.c_str());
  std::fflush(stderr);
  std::_Exit(1);
}

void* OpenLibrary(std::string* path) {
  const char* override_path = getenv("ANVIL_OPENBLAS_LIBRARY");
  std::string errors;
  for (const char* candidate : {override_path, ANVIL_OPENBLAS_LIBRARY, "libopenblas.so.0"}) {
    if (candidate == nullptr || candidate[0] == '\0') continue;
    if (void* h = dlopen(candidate, RTLD_NOW | RTLD_LOCAL)) {
      *path = candidate;
      return h;
    }
    errors += std::string(errors.empty() ? "" : "; ") + dlerror();
    if (candidate == override_path) Die("ANVIL_OPENBLAS_LIBRARY: " + errors);
  }
  Die(errors + " (install libopenblas0-openmp: scripts/setup.sh)");
}

template <typename F>
F Symbol(void* handle, const char* name, const std::string& path) {
  void* p = dlsym(handle, name);
  if (p == nullptr) Die(path + " has no symbol " + name);
  return reinterpret_cast<F>(p);
}

OpenBlas Load() {
  OpenBlas lib;
  const std::optional<std::string> core = ChosenCoreType();
  std::optional<std::string> saved;
  if (core.has_value()) {
    if (const char* old = getenv("OPENBLAS_CORETYPE")) saved = std::string(old);
    setenv("OPENBLAS_CORETYPE", core->c_str(), /*overwrite=*/1);
  }
  void* h = OpenLibrary(&lib.path);
  if (core.has_value()) {
    if (saved.has_value()) {
      setenv("OPENBLAS_CORETYPE", saved->c_str(), 1);
    } else {
      unsetenv("OPENBLAS_CORETYPE");
    }
  }
  lib.sgemm = Symbol<decltype(lib.sgemm)>(h, "cblas_sgemm", lib.path);
  lib.get_parallel = Symbol<decltype(lib.get_parallel)>(h, "openblas_get_parallel", lib.path);
  lib.get_num_threads =
      Symbol<decltype(lib.get_num_threads)>(h, "openblas_get_num_threads", lib.path);
  lib.set_num_threads =
      Symbol<decltype(lib.set_num_threads)>(h, "openblas_set_num_threads", lib.path);
  lib.get_corename = Symbol<decltype(lib.get_corename)>(h, "openblas_get_corename", lib.path);
  return lib;
}

const OpenBlas& Lib() {
  static const OpenBlas lib = Load();
  return lib;
}

// Load before main, while the process has one thread (setenv is not safe
// against concurrent getenv).
[[maybe_unused]] const OpenBlas& loaded_at_start = Lib();

}  // namespace

bool CpuHasAvx512Subsets() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
         __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
}

void Sgemm(CBLAS_ORDER order, CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int m, int n, int k,
           float alpha, const float* a, int lda, const float* b, int ldb, float beta, float* c,
           int ldc) {
  Lib().sgemm(order, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

std::string BlasCoreName() { return Lib().get_corename(); }

std::string BlasLibraryPath() { return Lib().path; }

bool BlasUsesOpenMp() {
  static const bool omp = Lib().get_parallel() == 2;
  return omp;
}

void SetBlasThreads(int nt) {
  if (BlasUsesOpenMp()) {
    if (omp_get_max_threads() != nt) omp_set_num_threads(nt);
  } else if (Lib().get_num_threads() != nt) {
    Lib().set_num_threads(nt);
  }
}

BlasSingleThreadScope::BlasSingleThreadScope() : saved_(0) {
  if (!BlasUsesOpenMp()) {
    saved_ = Lib().get_num_threads();
    if (saved_ != 1) Lib().set_num_threads(1);
  }
}

BlasSingleThreadScope::~BlasSingleThreadScope() {
  if (saved_ > 1) Lib().set_num_threads(saved_);
}

}  // namespace anvil::kernels::cpu
