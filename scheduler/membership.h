// Who is in the cluster: assigns ranks to registering nodes. A node may ask
// for a rank (its MPI rank or pod ordinal); otherwise it gets the lowest free
// one. Registration is idempotent: the same endpoint registering again (a
// retry) gets the same id back.
//
// Thread-compatible (the scheduler serializes access).
#ifndef TESSERA_SCHEDULER_MEMBERSHIP_H_
#define TESSERA_SCHEDULER_MEMBERSHIP_H_

#include <map>
#include <vector>

#include "common/status.h"
#include "common/types.h"
#include "protocols/codec.h"

namespace tessera::scheduler {

class Membership {
 public:
  Membership(int num_servers, int num_workers);

  // InvalidArgument for a bad role or a requested rank out of range,
  // AlreadyExists if the requested rank is taken by another endpoint,
  // ResourceExhausted when the role is full.
  StatusOr<NodeId> Register(const protocol::RegisterRequest& request);
  // A replacement process for server `rank` (its old process died): takes
  // the rank over with the new endpoint.
  NodeId ReplaceServer(int32_t rank, const protocol::RegisterRequest& request);
  bool complete() const;
  int expected(Role role) const;
  int registered(Role role) const;
  // Registered nodes of `role`, ordered by rank.
  std::vector<protocol::NodeInfo> nodes(Role role) const;
  // Every registered node (servers, then workers).
  std::vector<protocol::NodeInfo> all() const;

 private:
  std::map<int32_t, protocol::NodeInfo>& RoleMap(Role role);
  const std::map<int32_t, protocol::NodeInfo>& RoleMap(Role role) const;

  const int num_servers_;
  const int num_workers_;
  std::map<int32_t, protocol::NodeInfo> servers_;
  std::map<int32_t, protocol::NodeInfo> workers_;
};

}  // namespace tessera::scheduler

#endif  // TESSERA_SCHEDULER_MEMBERSHIP_H_
