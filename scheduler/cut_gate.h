// The consistent cut behind each published version: every running worker is
// stopped at a step boundary (its pushes acknowledged, its position
// reported), the servers copy their rows, and the workers go on.
//
// A worker reaches a boundary when it reports a finished step (a clock
// request). While a cut is pending, the reply to that report is held here
// instead of being sent, so the worker waits. Which reports are held:
//   - async and ssp: every report from the request on (each worker stops at
//     its next boundary; no worker waits for another to get there);
//   - sync (lockstep): reports of steps >= the highest step any running
//     worker has started when the cut was requested. A sync worker may wait
//     for the others' push turns mid-step, so stopping one early could
//     deadlock; instead all of them run to the same step and stop there.
// Workers waiting for stream input report "idle" periodically; those reports
// are held whatever the step. The cut is reached when every running worker
// (not done, not removed) has a held report; Release() hands the held
// replies back to be sent.
//
// Thread-compatible (the scheduler calls it under its lock).
#ifndef TESSERA_SCHEDULER_CUT_GATE_H_
#define TESSERA_SCHEDULER_CUT_GATE_H_

#include <algorithm>
#include <cstdint>
#include <utility>
#include <vector>

namespace tessera::scheduler {

template <typename Waiter>
class CutGate {
 public:
  CutGate(int num_workers, bool lockstep)
      : lockstep_(lockstep), started_(num_workers, 1), gone_(num_workers, false),
        held_(num_workers) {}

  // Starts a cut (no-op if one is pending).
  void Request() {
    if (pending_) return;
    pending_ = true;
    target_ = 0;
    if (lockstep_) {
      for (size_t w = 0; w < started_.size(); ++w) {
        if (!gone_[w]) target_ = std::max(target_, started_[w]);
      }
    }
  }
  bool pending() const { return pending_; }

  // The reply to worker `w`'s report of finished step `step` is due. Returns
  // true if it was taken (held until Release); else the caller sends it now,
  // and the worker starts step + 1. An `idle` worker (no batch to train,
  // nothing in flight) is at a boundary whatever its step: held too.
  bool Hold(int w, uint64_t step, Waiter& waiter, bool idle = false) {
    if (pending_ && (step >= target_ || idle) && !gone_[w]) {
      held_[w].emplace_back(step, std::move(waiter));
      return true;
    }
    started_[w] = std::max(started_[w], step + 1);
    return false;
  }

  // Worker `w` finished its data or died: the cut no longer waits for it.
  // Returns its held replies (to send).
  std::vector<Waiter> Remove(int w) {
    gone_[w] = true;
    std::vector<Waiter> out;
    for (auto& [step, waiter] : held_[w]) out.push_back(std::move(waiter));
    held_[w].clear();
    return out;
  }

  // A cut is pending and every running worker is held at a boundary.
  bool reached() const {
    if (!pending_) return false;
    for (size_t w = 0; w < held_.size(); ++w) {
      if (!gone_[w] && held_[w].empty()) return false;
    }
    return true;
  }

  // Ends the cut; returns every held reply (to send), in worker order.
  std::vector<Waiter> Release() {
    pending_ = false;
    std::vector<Waiter> out;
    for (size_t w = 0; w < held_.size(); ++w) {
      for (auto& [step, waiter] : held_[w]) {
        started_[w] = std::max(started_[w], step + 1);
        out.push_back(std::move(waiter));
      }
      held_[w].clear();
    }
    return out;
  }

 private:
  const bool lockstep_;
  bool pending_ = false;
  uint64_t target_ = 0;
  std::vector<uint64_t> started_;  // the step each worker is on (1-based)
  std::vector<bool> gone_;
  std::vector<std::vector<std::pair<uint64_t, Waiter>>> held_;  // (step, reply)
};

}  // namespace tessera::scheduler

#endif  // TESSERA_SCHEDULER_CUT_GATE_H_
