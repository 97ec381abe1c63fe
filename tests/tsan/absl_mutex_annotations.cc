// ThreadSanitizer builds only (ANVIL_SANITIZE=thread): tells TSan about
// absl::Mutex and absl::CondVar.
//
// Debian's Abseil is a shared library built without TSan, so its Mutex
// (a futex-based lock, not pthread's) is invisible to TSan and every access
// it protects would be reported as a race. The linker routes our calls to
// the Mutex and CondVar functions we use through these wrappers
// (-Wl,--wrap=<symbol>, see CMakeLists.txt), which annotate them with TSan's
// mutex interface around the real call: a lock is an acquire, an unlock a
// release, an Await or a CondVar wait an unlock followed by a lock. Accesses
// between a pre_ and its post_ annotation are not checked, which covers the
// Conditions absl evaluates inside Unlock and Await (under the lock).
#include <sanitizer/tsan_interface.h>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

using absl::Condition;
using absl::CondVar;
using absl::Duration;
using absl::Mutex;
using absl::Time;

extern "C" {

void __real__ZN4absl7debian35Mutex4LockEv(Mutex* m);
void __real__ZN4absl7debian35Mutex6UnlockEv(Mutex* m);
void __real__ZN4absl7debian35MutexD1Ev(Mutex* m);
void __real__ZN4absl7debian35Mutex5AwaitERKNS0_9ConditionE(Mutex* m, const Condition& c);
bool __real__ZN4absl7debian35Mutex16AwaitWithTimeoutERKNS0_9ConditionENS0_8DurationE(
    Mutex* m, const Condition& c, Duration d);
bool __real__ZN4absl7debian35Mutex17AwaitWithDeadlineERKNS0_9ConditionENS0_4TimeE(
    Mutex* m, const Condition& c, Time t);
bool __real__ZN4absl7debian37CondVar16WaitWithDeadlineEPNS0_5MutexENS0_4TimeE(CondVar* cv, Mutex* m,
                                                                              Time t);

void __wrap__ZN4absl7debian35Mutex4LockEv(Mutex* m) {
  __tsan_mutex_pre_lock(m, 0);
  __real__ZN4absl7debian35Mutex4LockEv(m);
  __tsan_mutex_post_lock(m, 0, 0);
}

void __wrap__ZN4absl7debian35Mutex6UnlockEv(Mutex* m) {
  __tsan_mutex_pre_unlock(m, 0);
  __real__ZN4absl7debian35Mutex6UnlockEv(m);
  __tsan_mutex_post_unlock(m, 0);
}

void __wrap__ZN4absl7debian35MutexD1Ev(Mutex* m) {
  __tsan_mutex_destroy(m, 0);
  __real__ZN4absl7debian35MutexD1Ev(m);
}

}  // extern "C"

namespace {

// Runs a call that releases `m` while it waits and holds it again when it
// returns, annotated as an unlock followed by a lock.
template <typename Call>
auto AsUnlockThenLock(Mutex* m, Call call) {
  __tsan_mutex_pre_unlock(m, 0);
  auto result = call();
  __tsan_mutex_post_unlock(m, 0);
  __tsan_mutex_pre_lock(m, 0);
  __tsan_mutex_post_lock(m, 0, 0);
  return result;
}

}  // namespace

extern "C" {

void __wrap__ZN4absl7debian35Mutex5AwaitERKNS0_9ConditionE(Mutex* m, const Condition& c) {
  AsUnlockThenLock(m, [&] {
    __real__ZN4absl7debian35Mutex5AwaitERKNS0_9ConditionE(m, c);
    return 0;
  });
}

bool __wrap__ZN4absl7debian35Mutex16AwaitWithTimeoutERKNS0_9ConditionENS0_8DurationE(
    Mutex* m, const Condition& c, Duration d) {
  return AsUnlockThenLock(m, [&] {
    return __real__ZN4absl7debian35Mutex16AwaitWithTimeoutERKNS0_9ConditionENS0_8DurationE(m, c, d);
  });
}

bool __wrap__ZN4absl7debian35Mutex17AwaitWithDeadlineERKNS0_9ConditionENS0_4TimeE(
    Mutex* m, const Condition& c, Time t) {
  return AsUnlockThenLock(m, [&] {
    return __real__ZN4absl7debian35Mutex17AwaitWithDeadlineERKNS0_9ConditionENS0_4TimeE(m, c, t);
  });
}

bool __wrap__ZN4absl7debian37CondVar16WaitWithDeadlineEPNS0_5MutexENS0_4TimeE(CondVar* cv, Mutex* m,
                                                                              Time t) {
  return AsUnlockThenLock(m, [&] {
    return __real__ZN4absl7debian37CondVar16WaitWithDeadlineEPNS0_5MutexENS0_4TimeE(cv, m, t);
  });
}

}  // extern "C"
