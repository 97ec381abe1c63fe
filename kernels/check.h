// Precondition checks for kernels.
//
// Ops have no error channel (they are fire-and-forget on a device stream,
// like CUDA launches), so a violated precondition is a programming
// error: it prints file:line and the failed condition, then aborts. Callers
// validate user input (vocab range, shapes) before it reaches a kernel.
#pragma once

#include <cstdio>
#include <cstdlib>

#define ANVIL_KCHECK(cond, msg)                                                                \
  do {                                                                                         \
    if (!(cond)) {                                                                             \
      std::fprintf(stderr, "%s:%d: kernel check failed: %s (%s)\n", __FILE__, __LINE__, #cond, \
                   msg);                                                                       \
      std::abort();                                                                            \
    }                                                                                          \
  } while (0)
