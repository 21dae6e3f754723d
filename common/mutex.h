// Annotated locking: absl::Mutex under Tessera names, with clang
// thread-safety annotations (checked with -Wthread-safety under clang).
#ifndef TESSERA_COMMON_MUTEX_H_
#define TESSERA_COMMON_MUTEX_H_

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"

namespace tessera {

using Mutex = absl::Mutex;
using MutexLock = absl::MutexLock;
using CondVar = absl::CondVar;
using Notification = absl::Notification;

}  // namespace tessera

#define TESSERA_GUARDED_BY(x) ABSL_GUARDED_BY(x)
#define TESSERA_PT_GUARDED_BY(x) ABSL_PT_GUARDED_BY(x)
#define TESSERA_EXCLUSIVE_LOCKS_REQUIRED(...) ABSL_EXCLUSIVE_LOCKS_REQUIRED(__VA_ARGS__)
#define TESSERA_LOCKS_EXCLUDED(...) ABSL_LOCKS_EXCLUDED(__VA_ARGS__)

#endif  // TESSERA_COMMON_MUTEX_H_
