// Stale-synchronous progress of the workers (SSP; sync is staleness 0). A
// worker reports each finished step (its gradients acknowledged by the
// servers) and may start the next one once no unfinished worker is more than
// `staleness` steps behind it. Workers that ran out of data report done and
// stop holding others back.
//
// Thread-compatible.
#ifndef TESSERA_SCHEDULER_STEP_CLOCK_H_
#define TESSERA_SCHEDULER_STEP_CLOCK_H_

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace tessera::scheduler {

template <typename Waiter>
class StepClock {
 public:
  StepClock(int num_workers, uint32_t staleness)
      : staleness_(staleness),
        finished_(num_workers, 0),
        requested_(num_workers, 0),
        done_(num_workers, false) {}

  // Worker `w` finished step `step` (1-based) or is `done`. Returns the
  // waiters (possibly including this one) that may proceed now; this one is
  // kept until then.
  std::vector<Waiter> Report(int w, uint64_t step, bool done, Waiter waiter) {
    if (step > finished_[w]) finished_[w] = step;
    if (done) done_[w] = true;
    waiting_.push_back({step, std::move(waiter)});
    return Release();
  }

  // Worker `w` asks for its turn to push `step` (sync), having pulled and
  // computed it. Granted once every running worker asked for its turn of
  // `step` too (so all of them pulled before anyone pushes) and every
  // lower-ranked running worker finished `step` (pushes in rank order).
  // Returns the waiters (of Report or RequestTurn) that may proceed now.
  std::vector<Waiter> RequestTurn(int w, uint64_t step, Waiter waiter) {
    if (step > requested_[w]) requested_[w] = step;
    turns_.push_back({w, step, std::move(waiter)});
    return Release();
  }

  // A worker left (dead): it no longer holds others back.
  std::vector<Waiter> Remove(int w) {
    done_[w] = true;
    return Release();
  }

  bool all_done() const {
    for (bool d : done_) {
      if (!d) return false;
    }
    return true;
  }
  // Smallest finished step among workers not done (max uint64 if none).
  uint64_t slowest() const {
    uint64_t m = UINT64_MAX;
    for (std::size_t w = 0; w < finished_.size(); ++w) {
      if (!done_[w] && finished_[w] < m) m = finished_[w];
    }
    return m;
  }
  // Steps between the fastest and the slowest unfinished worker.
  uint64_t spread() const {
    uint64_t lo = slowest(), hi = 0;
    for (std::size_t w = 0; w < finished_.size(); ++w) {
      if (!done_[w] && finished_[w] > hi) hi = finished_[w];
    }
    return lo == UINT64_MAX ? 0 : hi - lo;
  }

 private:
  std::vector<Waiter> Release() {
    const uint64_t slow = slowest();
    std::vector<Waiter> go;
    std::vector<std::pair<uint64_t, Waiter>> keep;
    for (auto& [step, waiter] : waiting_) {
      // Starting step+1 needs every unfinished worker at >= step - staleness.
      if (slow == UINT64_MAX || slow + staleness_ >= step) {
        go.push_back(std::move(waiter));
      } else {
        keep.emplace_back(step, std::move(waiter));
      }
    }
    waiting_ = std::move(keep);
    std::vector<Turn> pending;
    for (Turn& t : turns_) {
      bool ready = true;
      for (int v = 0; v < static_cast<int>(done_.size()); ++v) {
        if (done_[v]) continue;
        if (requested_[v] < t.step) ready = false;                // not pulled yet
        if (v < t.worker && finished_[v] < t.step) ready = false;  // not pushed yet
      }
      if (ready) {
        go.push_back(std::move(t.waiter));
      } else {
        pending.push_back(std::move(t));
      }
    }
    turns_ = std::move(pending);
    return go;
  }

  struct Turn {
    int worker;
    uint64_t step;
    Waiter waiter;
  };

  const uint32_t staleness_;
  std::vector<uint64_t> finished_;
  std::vector<uint64_t> requested_;  // highest step whose push turn was asked for
  std::vector<bool> done_;
  std::vector<std::pair<uint64_t, Waiter>> waiting_;
  std::vector<Turn> turns_;
};

}  // namespace tessera::scheduler

#endif  // TESSERA_SCHEDULER_STEP_CLOCK_H_
