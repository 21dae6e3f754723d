// Makes absl::Mutex, absl::CondVar and absl::Notification visible to
// ThreadSanitizer. Linked into every test binary of a TESSERA_SANITIZE=thread
// build only (cmake/TesseraHelpers.cmake; tools/sanitize.sh tsan).
//
// Why: Debian's libabsl is not built with -fsanitize=thread, so its
// ABSL_TSAN_MUTEX_* annotations are compiled out and its lock word is
// uninstrumented: TSan sees no happens-before edge from an Unlock() to the
// next Lock(). Every datum guarded by a tessera::Mutex would then be reported
// as a race, and the two stacks of such a report are entirely our own code
// (the guarded accesses), so a suppression cannot scope it to absl. Neither
// does a TSAN_OPTIONS flag (ignore_noninstrumented_modules only hides
// accesses made inside the library; it adds no synchronization).
//
// How: the executable defines the library's exported entry points itself.
// The dynamic linker binds every call to them (ours, and absl's own calls
// through its PLT) to these definitions, which forward to the real ones
// (dlsym(RTLD_NEXT)) between the same __tsan_mutex_* annotations that absl
// makes when it is built with TSan (absl/synchronization/mutex.cc), and the
// conditions absl evaluates while holding the lock are bracketed as absl's
// EvalConditionAnnotated() does. Nothing is suppressed: a real race on
// guarded data (an access without the lock) is still reported.
//
// Limits: a CondVar wait is annotated as a writer's; no code of ours waits on
// a CondVar with a reader lock.

#include <dlfcn.h>
#include <sanitizer/tsan_interface.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <type_traits>

#include "absl/base/options.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"

#pragma clang diagnostic ignored "-Wthread-safety-analysis"

namespace {

#define TESSERA_TSAN_STR2(x) #x
#define TESSERA_TSAN_STR(x) TESSERA_TSAN_STR2(x)

// The real function named by its Itanium mangling; `prefix` is "_ZN" or
// "_ZNK" (const), `rest` what follows absl's inline namespace.
template <typename Fn>
Fn Real(const char* prefix, const char* rest) {
  const std::string ns = TESSERA_TSAN_STR(ABSL_OPTION_INLINE_NAMESPACE_NAME);
  const std::string name =
      std::string(prefix) + "4absl" + std::to_string(ns.size()) + ns + rest;
  void* fn = dlsym(RTLD_NEXT, name.c_str());
  if (fn == nullptr) {
    std::fprintf(stderr, "tsan_absl_sync: %s not found in libabsl\n", name.c_str());
    std::abort();
  }
  return reinterpret_cast<Fn>(fn);
}

using Mutex = absl::Mutex;
using Condition = absl::Condition;

// What this thread is inside of, for Condition::Eval(): absl evaluates
// conditions (its own waiter's or, while unlocking, other waiters') with the
// mutex held, in the middle of a lock or unlock operation.
enum class Phase { kNone, kLocking, kUnlocking, kReleased };
struct Inside {
  Mutex* mu;
  Phase phase;
  unsigned flags;  // __tsan_mutex_read_lock or 0
};
thread_local Inside inside = {nullptr, Phase::kNone, 0};

// Sets `inside` for the duration of one real call.
class Scope {
 public:
  Scope(Mutex* mu, Phase phase, unsigned flags) : saved_(inside) { inside = {mu, phase, flags}; }
  ~Scope() { inside = saved_; }

 private:
  Inside saved_;
};

// True inside one of our wrappers' real call on `mu`: absl's own calls from
// there (AwaitWithTimeout calls AwaitWithDeadline through the PLT, ...) are
// part of the operation already annotated and pass straight through.
bool Nested(const Mutex* mu) { return inside.mu == mu && inside.phase != Phase::kNone; }

// Lock operations: pre_lock, the real call (accesses inside are ignored),
// post_lock.
template <typename F>
auto Locking(Mutex* mu, unsigned flags, F real) {
  if (Nested(mu)) return real();
  __tsan_mutex_pre_lock(mu, flags);
  Scope scope(mu, Phase::kLocking, flags);
  if constexpr (std::is_void_v<decltype(real())>) {
    real();
    __tsan_mutex_post_lock(mu, flags, 0);
  } else {
    auto r = real();
    __tsan_mutex_post_lock(mu, flags, 0);
    return r;
  }
}

void Unlocking(Mutex* mu, unsigned flags, void (*real)(Mutex*)) {
  if (Nested(mu)) return real(mu);
  __tsan_mutex_pre_unlock(mu, flags);
  Scope scope(mu, Phase::kUnlocking, flags);
  real(mu);
  __tsan_mutex_post_unlock(mu, flags);
}

// Await and CondVar waits: released for the whole real call (a condition
// evaluated inside takes the lock again), held again on return.
template <typename F>
auto Released(Mutex* mu, F real) {
  if (Nested(mu)) return real();
  __tsan_mutex_pre_unlock(mu, 0);
  __tsan_mutex_post_unlock(mu, 0);
  Scope scope(mu, Phase::kReleased, 0);
  auto r = real();
  __tsan_mutex_pre_lock(mu, 0);
  __tsan_mutex_post_lock(mu, 0, 0);
  return r;
}

// Notification's flag; HasBeenNotified() loads it inline (instrumented), so
// a release on its address pairs with that acquire load.
void* NotifiedFlag(const absl::Notification* n) {
  static_assert(sizeof(absl::Notification) == 2 * sizeof(Mutex));
  return const_cast<char*>(reinterpret_cast<const char*>(n) + sizeof(Mutex));
}

}  // namespace

namespace absl {
ABSL_NAMESPACE_BEGIN

void Mutex::Lock() {
  static const auto real = Real<void (*)(Mutex*)>("_ZN", "5Mutex4LockEv");
  Locking(this, 0, [&] { real(this); });
}

void Mutex::ReaderLock() {
  static const auto real = Real<void (*)(Mutex*)>("_ZN", "5Mutex10ReaderLockEv");
  Locking(this, __tsan_mutex_read_lock, [&] { real(this); });
}

bool Mutex::TryLock() {
  static const auto real = Real<bool (*)(Mutex*)>("_ZN", "5Mutex7TryLockEv");
  if (Nested(this)) return real(this);
  __tsan_mutex_pre_lock(this, __tsan_mutex_try_lock);
  const bool ok = real(this);
  __tsan_mutex_post_lock(this, ok ? __tsan_mutex_try_lock : __tsan_mutex_try_lock_failed, 0);
  return ok;
}

bool Mutex::ReaderTryLock() {
  static const auto real = Real<bool (*)(Mutex*)>("_ZN", "5Mutex13ReaderTryLockEv");
  if (Nested(this)) return real(this);
  __tsan_mutex_pre_lock(this, __tsan_mutex_try_read_lock);
  const bool ok = real(this);
  __tsan_mutex_post_lock(this, ok ? __tsan_mutex_try_read_lock : __tsan_mutex_try_read_lock_failed,
                         0);
  return ok;
}

void Mutex::Unlock() {
  static const auto real = Real<void (*)(Mutex*)>("_ZN", "5Mutex6UnlockEv");
  Unlocking(this, 0, real);
}

void Mutex::ReaderUnlock() {
  static const auto real = Real<void (*)(Mutex*)>("_ZN", "5Mutex12ReaderUnlockEv");
  Unlocking(this, __tsan_mutex_read_lock, real);
}

void Mutex::LockWhen(const Condition& cond) {
  static const auto real =
      Real<void (*)(Mutex*, const Condition&)>("_ZN", "5Mutex8LockWhenERKNS0_9ConditionE");
  Locking(this, 0, [&] { real(this, cond); });
}

void Mutex::ReaderLockWhen(const Condition& cond) {
  static const auto real =
      Real<void (*)(Mutex*, const Condition&)>("_ZN", "5Mutex14ReaderLockWhenERKNS0_9ConditionE");
  Locking(this, __tsan_mutex_read_lock, [&] { real(this, cond); });
}

bool Mutex::LockWhenWithTimeout(const Condition& cond, Duration timeout) {
  static const auto real = Real<bool (*)(Mutex*, const Condition&, Duration)>(
      "_ZN", "5Mutex19LockWhenWithTimeoutERKNS0_9ConditionENS0_8DurationE");
  return Locking(this, 0, [&] { return real(this, cond, timeout); });
}

bool Mutex::LockWhenWithDeadline(const Condition& cond, Time deadline) {
  static const auto real = Real<bool (*)(Mutex*, const Condition&, Time)>(
      "_ZN", "5Mutex20LockWhenWithDeadlineERKNS0_9ConditionENS0_4TimeE");
  return Locking(this, 0, [&] { return real(this, cond, deadline); });
}

bool Mutex::ReaderLockWhenWithTimeout(const Condition& cond, Duration timeout) {
  static const auto real = Real<bool (*)(Mutex*, const Condition&, Duration)>(
      "_ZN", "5Mutex25ReaderLockWhenWithTimeoutERKNS0_9ConditionENS0_8DurationE");
  return Locking(this, __tsan_mutex_read_lock, [&] { return real(this, cond, timeout); });
}

bool Mutex::ReaderLockWhenWithDeadline(const Condition& cond, Time deadline) {
  static const auto real = Real<bool (*)(Mutex*, const Condition&, Time)>(
      "_ZN", "5Mutex26ReaderLockWhenWithDeadlineERKNS0_9ConditionENS0_4TimeE");
  return Locking(this, __tsan_mutex_read_lock, [&] { return real(this, cond, deadline); });
}

void Mutex::Await(const Condition& cond) {
  static const auto real =
      Real<void (*)(Mutex*, const Condition&)>("_ZN", "5Mutex5AwaitERKNS0_9ConditionE");
  Released(this, [&] {
    real(this, cond);
    return 0;
  });
}

bool Mutex::AwaitWithTimeout(const Condition& cond, Duration timeout) {
  static const auto real = Real<bool (*)(Mutex*, const Condition&, Duration)>(
      "_ZN", "5Mutex16AwaitWithTimeoutERKNS0_9ConditionENS0_8DurationE");
  return Released(this, [&] { return real(this, cond, timeout); });
}

bool Mutex::AwaitWithDeadline(const Condition& cond, Time deadline) {
  static const auto real = Real<bool (*)(Mutex*, const Condition&, Time)>(
      "_ZN", "5Mutex17AwaitWithDeadlineERKNS0_9ConditionENS0_4TimeE");
  return Released(this, [&] { return real(this, cond, deadline); });
}

Mutex::~Mutex() {
  static const auto real = Real<void (*)(Mutex*)>("_ZN", "5MutexD2Ev");
  __tsan_mutex_destroy(this, 0);
  real(this);
}

bool Condition::Eval() const {
  static const auto real = Real<bool (*)(const Condition*)>("_ZNK", "9Condition4EvalEv");
  const Inside in = inside;
  if (in.mu == nullptr) return real(this);
  // The condition's own code is ours: locks it takes are annotated anew.
  Scope user(nullptr, Phase::kNone, 0);
  // As absl's EvalConditionAnnotated(): the condition runs as if under a
  // lock of its own, then the outer operation resumes where it was.
  bool r = false;
  switch (in.phase) {
    case Phase::kLocking:
      __tsan_mutex_post_lock(in.mu, in.flags, 0);
      r = real(this);
      __tsan_mutex_pre_unlock(in.mu, in.flags);
      __tsan_mutex_post_unlock(in.mu, in.flags);
      __tsan_mutex_pre_lock(in.mu, in.flags);
      break;
    case Phase::kUnlocking:
      __tsan_mutex_post_unlock(in.mu, in.flags);
      __tsan_mutex_pre_lock(in.mu, in.flags);
      __tsan_mutex_post_lock(in.mu, in.flags, 0);
      r = real(this);
      __tsan_mutex_pre_unlock(in.mu, in.flags);
      break;
    case Phase::kReleased:
      __tsan_mutex_pre_lock(in.mu, in.flags);
      __tsan_mutex_post_lock(in.mu, in.flags, 0);
      r = real(this);
      __tsan_mutex_pre_unlock(in.mu, in.flags);
      __tsan_mutex_post_unlock(in.mu, in.flags);
      break;
    case Phase::kNone:
      r = real(this);
      break;
  }
  return r;
}

void CondVar::Wait(Mutex* mu) {
  static const auto real = Real<void (*)(CondVar*, Mutex*)>("_ZN", "7CondVar4WaitEPNS0_5MutexE");
  Released(mu, [&] {
    real(this, mu);
    return 0;
  });
}

bool CondVar::WaitWithTimeout(Mutex* mu, Duration timeout) {
  static const auto real = Real<bool (*)(CondVar*, Mutex*, Duration)>(
      "_ZN", "7CondVar15WaitWithTimeoutEPNS0_5MutexENS0_8DurationE");
  return Released(mu, [&] { return real(this, mu, timeout); });
}

bool CondVar::WaitWithDeadline(Mutex* mu, Time deadline) {
  static const auto real = Real<bool (*)(CondVar*, Mutex*, Time)>(
      "_ZN", "7CondVar16WaitWithDeadlineEPNS0_5MutexENS0_4TimeE");
  return Released(mu, [&] { return real(this, mu, deadline); });
}

void Notification::Notify() {
  static const auto real = Real<void (*)(Notification*)>("_ZN", "12Notification6NotifyEv");
  __tsan_release(NotifiedFlag(this));
  real(this);
}

void Notification::WaitForNotification() const {
  static const auto real =
      Real<void (*)(const Notification*)>("_ZNK", "12Notification19WaitForNotificationEv");
  real(this);
  __tsan_acquire(NotifiedFlag(this));
}

bool Notification::WaitForNotificationWithTimeout(Duration timeout) const {
  static const auto real = Real<bool (*)(const Notification*, Duration)>(
      "_ZNK", "12Notification30WaitForNotificationWithTimeoutENS0_8DurationE");
  const bool notified = real(this, timeout);
  if (notified) __tsan_acquire(NotifiedFlag(this));
  return notified;
}

bool Notification::WaitForNotificationWithDeadline(Time deadline) const {
  static const auto real = Real<bool (*)(const Notification*, Time)>(
      "_ZNK", "12Notification31WaitForNotificationWithDeadlineENS0_4TimeE");
  const bool notified = real(this, deadline);
  if (notified) __tsan_acquire(NotifiedFlag(this));
  return notified;
}

ABSL_NAMESPACE_END
}  // namespace absl
