// Basic vocabulary shared by every role.
#ifndef TESSERA_COMMON_TYPES_H_
#define TESSERA_COMMON_TYPES_H_

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace tessera {

// A feature key: the 64-bit hash of (table, token). Key 0 is a valid key.
using Key = uint64_t;

// Index of a virtual slot (0 .. num_slots-1). Keys map to slots by hash,
// slots map to servers through the shard map.
using SlotId = uint32_t;

// A table's id, assigned in the order tables appear in the job configuration.
using TableId = uint32_t;

enum class Role : uint8_t { kScheduler = 0, kServer = 1, kWorker = 2 };

std::string_view RoleName(Role role);
// Parses "scheduler" | "server" | "worker". Returns false on anything else.
bool ParseRole(std::string_view text, Role* role);

// Identity of a node in a cluster. The scheduler is always {kScheduler, 0};
// servers and workers are numbered 0.. within their role.
struct NodeId {
  Role role = Role::kScheduler;
  int32_t rank = 0;

  friend bool operator==(const NodeId&, const NodeId&) = default;
  friend auto operator<=>(const NodeId&, const NodeId&) = default;
  std::string ToString() const;  // e.g. "server/1"

  template <typename H>
  friend H AbslHashValue(H h, const NodeId& id) {
    return H::combine(std::move(h), id.role, id.rank);
  }
};

inline constexpr NodeId kSchedulerId{Role::kScheduler, 0};
// Rank of a node that has not been assigned one yet.
inline constexpr int32_t kUnassignedRank = -1;

}  // namespace tessera

template <>
struct std::hash<tessera::NodeId> {
  size_t operator()(const tessera::NodeId& id) const noexcept {
    return (static_cast<size_t>(id.role) << 32) ^ static_cast<uint32_t>(id.rank);
  }
};

#endif  // TESSERA_COMMON_TYPES_H_
