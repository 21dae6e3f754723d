#include "scheduler/failure_detector.h"

namespace tessera::scheduler {

FailureDetector::FailureDetector(const Clock* clock, Clock::Duration timeout)
    : clock_(clock), timeout_(timeout) {}

void FailureDetector::Watch(NodeId node) { nodes_[node] = State{clock_->Now(), false}; }

void FailureDetector::Beat(NodeId node) {
  auto it = nodes_.find(node);
  if (it == nodes_.end() || it->second.dead) return;
  it->second.last_beat = clock_->Now();
}

std::vector<NodeId> FailureDetector::CheckNewlyDead() {
  std::vector<NodeId> dead;
  const Clock::TimePoint now = clock_->Now();
  for (auto& [node, state] : nodes_) {
    if (!state.dead && now - state.last_beat > timeout_) {
      state.dead = true;
      dead.push_back(node);
    }
  }
  return dead;
}

bool FailureDetector::IsDead(NodeId node) const {
  auto it = nodes_.find(node);
  return it != nodes_.end() && it->second.dead;
}

Clock::Duration FailureDetector::SinceLastBeat(NodeId node) const {
  auto it = nodes_.find(node);
  if (it == nodes_.end()) return Clock::Duration::zero();
  return clock_->Now() - it->second.last_beat;
}

}  // namespace tessera::scheduler
