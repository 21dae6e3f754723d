// An unbounded multi-producer multi-consumer queue with deadlines and close.
// Thread-safe.
#ifndef TESSERA_COMMON_BLOCKING_QUEUE_H_
#define TESSERA_COMMON_BLOCKING_QUEUE_H_

#include <chrono>
#include <deque>
#include <optional>
#include <utility>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/mutex.h"

namespace tessera {

template <typename T>
class BlockingQueue {
 public:
  // Returns false (and drops `item`) if the queue is closed.
  bool Push(T item) {
    MutexLock lock(&mu_);
    if (closed_) return false;
    items_.push_back(std::move(item));
    return true;
  }

  // Waits until an item is available, the deadline passes or the queue is
  // closed and drained. nullopt on timeout or close.
  std::optional<T> Pop(std::chrono::steady_clock::time_point deadline) {
    auto remaining = deadline - std::chrono::steady_clock::now();
    absl::Time abs_deadline =
        absl::Now() + absl::FromChrono(std::chrono::duration_cast<std::chrono::nanoseconds>(
                          remaining < decltype(remaining)::zero() ? decltype(remaining)::zero()
                                                                  : remaining));
    MutexLock lock(&mu_);
    mu_.AwaitWithDeadline(absl::Condition(this, &BlockingQueue::Ready), abs_deadline);
    if (items_.empty()) return std::nullopt;
    T item = std::move(items_.front());
    items_.pop_front();
    return item;
  }

  // Wakes all waiters; later Push() calls fail, Pop() drains what is left.
  void Close() {
    MutexLock lock(&mu_);
    closed_ = true;
  }

  bool closed() const {
    MutexLock lock(&mu_);
    return closed_;
  }

  size_t size() const {
    MutexLock lock(&mu_);
    return items_.size();
  }

 private:
  bool Ready() const TESSERA_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return closed_ || !items_.empty(); }

  mutable Mutex mu_;
  // protected by mu_
  std::deque<T> items_ TESSERA_GUARDED_BY(mu_);
  bool closed_ TESSERA_GUARDED_BY(mu_) = false;
};

}  // namespace tessera

#endif  // TESSERA_COMMON_BLOCKING_QUEUE_H_
