// Heartbeat bookkeeping: a node is dead when no heartbeat arrived for
// `timeout` (measured with the injected Clock). Thread-compatible.
#ifndef TESSERA_SCHEDULER_FAILURE_DETECTOR_H_
#define TESSERA_SCHEDULER_FAILURE_DETECTOR_H_

#include <map>
#include <vector>

#include "common/clock.h"
#include "common/types.h"

namespace tessera::scheduler {

class FailureDetector {
 public:
  // `clock` must outlive the detector.
  FailureDetector(const Clock* clock, Clock::Duration timeout);

  // Starts watching `node` as if it had just sent a heartbeat.
  void Watch(NodeId node);
  // Records a heartbeat; ignored for nodes not watched or already dead.
  void Beat(NodeId node);
  // Nodes whose last heartbeat is older than the timeout and that were not
  // reported before. Each dead node is reported once.
  std::vector<NodeId> CheckNewlyDead();
  bool IsDead(NodeId node) const;
  // Time since `node`'s last heartbeat (zero if unknown).
  Clock::Duration SinceLastBeat(NodeId node) const;

 private:
  struct State {
    Clock::TimePoint last_beat;
    bool dead = false;
  };
  const Clock* const clock_;
  const Clock::Duration timeout_;
  std::map<NodeId, State> nodes_;
};

}  // namespace tessera::scheduler

#endif  // TESSERA_SCHEDULER_FAILURE_DETECTOR_H_
