#include "scheduler/data_assigner.h"

#include <utility>

namespace tessera::scheduler {

DataAssigner::DataAssigner(std::vector<DataChunk> chunks, uint32_t epochs, int num_workers,
                           bool static_order)
    : static_order_(static_order),
      num_workers_(num_workers),
      queues_(static_order ? num_workers : 1) {
  uint64_t id = 0;
  for (uint32_t e = 0; e < epochs; ++e) {
    for (const DataChunk& c : chunks) {
      Assignment a{id, e, c};
      queues_[static_order ? id % num_workers : 0].push_back(a);
      bytes_total_ += c.end - c.begin;
      ++id;
    }
  }
  total_ = id;
}

std::deque<Assignment>& DataAssigner::QueueOf(int worker) {
  return queues_[static_order_ ? worker % num_workers_ : 0];
}

std::optional<Assignment> DataAssigner::Next(int worker, std::optional<uint64_t> completed) {
  if (completed.has_value()) {
    auto it = in_flight_.find(*completed);
    if (it != in_flight_.end() && it->second.first == worker) {
      ++completed_;
      bytes_completed_ += it->second.second.chunk.end - it->second.second.chunk.begin;
      in_flight_.erase(it);
    }
  }
  std::deque<Assignment>& queue = QueueOf(worker);
  if (queue.empty()) return std::nullopt;
  Assignment next = queue.front();
  queue.pop_front();
  in_flight_[next.id] = {worker, next};
  return next;
}

void DataAssigner::Requeue(int worker) {
  for (auto it = in_flight_.begin(); it != in_flight_.end();) {
    if (it->second.first == worker) {
      // In static order the dead worker's queue is shared out to the others
      // implicitly: it goes to the front of the first queue.
      queues_[0].push_front(it->second.second);
      it = in_flight_.erase(it);
    } else {
      ++it;
    }
  }
  if (static_order_ && worker % num_workers_ != 0) {
    std::deque<Assignment>& orphaned = QueueOf(worker);
    for (Assignment& a : orphaned) queues_[0].push_back(a);
    orphaned.clear();
  }
}

}  // namespace tessera::scheduler
