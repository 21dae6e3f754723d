// The operation ids (PushRequest.op_id) a server applied recently, so a
// retried or duplicated push is acknowledged without being applied twice.
// Bounded: the oldest ids are forgotten past `capacity` (clients retry within
// seconds; the default holds minutes of pushes at full load).
//
// Thread-compatible (the server's receive thread owns it).
#ifndef TESSERA_SERVER_APPLIED_OPS_H_
#define TESSERA_SERVER_APPLIED_OPS_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <span>
#include <vector>

#include "absl/container/flat_hash_set.h"

namespace tessera::server {

class AppliedOps {
 public:
  static constexpr size_t kDefaultCapacity = size_t{1} << 18;

  explicit AppliedOps(size_t capacity = kDefaultCapacity) : capacity_(capacity) {}

  bool Contains(uint64_t op_id) const { return ids_.contains(op_id); }
  // Records `op_id` (0 is never recorded); a known id is ignored.
  void Add(uint64_t op_id) {
    if (op_id == 0 || !ids_.insert(op_id).second) return;
    order_.push_back(op_id);
    if (order_.size() > capacity_) {
      ids_.erase(order_.front());
      order_.pop_front();
    }
  }
  void AddAll(std::span<const uint64_t> op_ids) {
    for (uint64_t id : op_ids) Add(id);
  }
  // Oldest first.
  std::vector<uint64_t> All() const { return {order_.begin(), order_.end()}; }
  size_t size() const { return order_.size(); }
  void Clear() {
    ids_.clear();
    order_.clear();
  }

 private:
  size_t capacity_;
  absl::flat_hash_set<uint64_t> ids_;
  std::deque<uint64_t> order_;
};

}  // namespace tessera::server

#endif  // TESSERA_SERVER_APPLIED_OPS_H_
