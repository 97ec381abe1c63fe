// Status helpers for the control plane.
// The Debian Abseil (20220623) predates absl's own status macros, so the project
// carries this small pair. RETURN_IF_ERROR adds nothing to the message; callers
// that want context use absl::Status::message() in their own error.
#pragma once

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"

#define ANVIL_CONCAT_INNER_(a, b) a##b
#define ANVIL_CONCAT_(a, b) ANVIL_CONCAT_INNER_(a, b)

#define RETURN_IF_ERROR(expr)                   \
  do {                                          \
    ::absl::Status _anvil_st = (expr);          \
    if (!_anvil_st.ok()) return _anvil_st;      \
  } while (0)

#define ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                           \
  if (!tmp.ok()) return tmp.status();          \
  lhs = std::move(tmp).value()

#define ASSIGN_OR_RETURN(lhs, expr) \
  ASSIGN_OR_RETURN_IMPL_(ANVIL_CONCAT_(_anvil_sor_, __LINE__), lhs, expr)

// Data-plane errors (CUDA, NCCL, Gloo, syscalls) become a Status tagged with
// file:line, so a failure carries a poor man's backtrace through each frame.
#define ANVIL_HERE_ ::absl::StrCat(__FILE__, ":", __LINE__, ": ")
namespace anvil {
inline absl::Status AnnotateStatus(const absl::Status& s, const char* file, int line) {
  if (s.ok()) return s;
  return absl::Status(s.code(), absl::StrCat(s.message(), "\n  at ", file, ":", line));
}
}  // namespace anvil
#define RETURN_IF_ERROR_HERE(expr)                                            \
  do {                                                                        \
    ::absl::Status _anvil_st = (expr);                                        \
    if (!_anvil_st.ok()) return ::anvil::AnnotateStatus(_anvil_st, __FILE__, __LINE__); \
  } while (0)
