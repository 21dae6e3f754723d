// Counts arrivals at a barrier and releases everyone once the group is
// complete; the barrier then resets for its next use. The group may shrink
// between arrivals (members declared dead: RemoveIf, then Release).
// Thread-compatible.
#ifndef TESSERA_SCHEDULER_BARRIER_H_
#define TESSERA_SCHEDULER_BARRIER_H_

#include <utility>
#include <vector>

namespace tessera::scheduler {

template <typename Waiter>
class Barrier {
 public:
  // Records `waiter`. When it completes a group of `group_size`, returns all
  // waiters of this round (the barrier resets); otherwise returns nothing.
  std::vector<Waiter> Arrive(int group_size, Waiter waiter) {
    waiting_.push_back(std::move(waiter));
    if (static_cast<int>(waiting_.size()) < group_size) return {};
    std::vector<Waiter> released;
    released.swap(waiting_);
    ++rounds_;
    return released;
  }
  // The group shrank (a member died): releases this round's waiters if
  // they now complete a group of `group_size`; otherwise returns nothing.
  std::vector<Waiter> Release(int group_size) {
    if (waiting_.empty() || static_cast<int>(waiting_.size()) < group_size) return {};
    std::vector<Waiter> released;
    released.swap(waiting_);
    ++rounds_;
    return released;
  }
  // Drops the waiters for which `pred` holds (a dead member's arrival does
  // not count for the live ones).
  template <typename Pred>
  void RemoveIf(Pred pred) {
    std::erase_if(waiting_, pred);
  }
  int waiting() const { return static_cast<int>(waiting_.size()); }
  int rounds() const { return rounds_; }

 private:
  std::vector<Waiter> waiting_;
  int rounds_ = 0;
};

}  // namespace tessera::scheduler

#endif  // TESSERA_SCHEDULER_BARRIER_H_
