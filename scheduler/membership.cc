#include "scheduler/membership.h"

namespace tessera::scheduler {

Membership::Membership(int num_servers, int num_workers)
    : num_servers_(num_servers), num_workers_(num_workers) {}

std::map<int32_t, protocol::NodeInfo>& Membership::RoleMap(Role role) {
  return role == Role::kServer ? servers_ : workers_;
}
const std::map<int32_t, protocol::NodeInfo>& Membership::RoleMap(Role role) const {
  return role == Role::kServer ? servers_ : workers_;
}

int Membership::expected(Role role) const {
  return role == Role::kServer ? num_servers_ : role == Role::kWorker ? num_workers_ : 0;
}

int Membership::registered(Role role) const {
  return role == Role::kScheduler ? 0 : static_cast<int>(RoleMap(role).size());
}

StatusOr<NodeId> Membership::Register(const protocol::RegisterRequest& request) {
  if (request.role == Role::kScheduler) {
    return InvalidArgumentError("register: a scheduler cannot register with a scheduler");
  }
  auto& nodes = RoleMap(request.role);
  const int limit = expected(request.role);
  for (const auto& [rank, info] : nodes) {
    if (info.endpoint == request.endpoint) return info.id;  // a retry
  }
  int32_t rank = request.requested_rank;
  if (rank != kUnassignedRank) {
    if (rank < 0 || rank >= limit) {
      return InvalidArgumentError("register: requested " + std::string(RoleName(request.role)) +
                                  " rank " + std::to_string(rank) + " is outside [0, " +
                                  std::to_string(limit) + ")");
    }
    if (nodes.count(rank) != 0) {
      return AlreadyExistsError("register: " + std::string(RoleName(request.role)) + " rank " +
                                std::to_string(rank) + " is already taken by " +
                                nodes.at(rank).endpoint);
    }
  } else {
    rank = 0;
    while (rank < limit && nodes.count(rank) != 0) ++rank;
    if (rank >= limit) {
      return ResourceExhaustedError("register: all " + std::to_string(limit) + " " +
                                    std::string(RoleName(request.role)) +
                                    " ranks are taken");
    }
  }
  protocol::NodeInfo info{NodeId{request.role, rank}, request.endpoint, request.metrics_port,
                          request.pid, request.host};
  nodes[rank] = info;
  return info.id;
}

NodeId Membership::ReplaceServer(int32_t rank, const protocol::RegisterRequest& request) {
  protocol::NodeInfo info{NodeId{Role::kServer, rank}, request.endpoint, request.metrics_port,
                          request.pid, request.host};
  servers_[rank] = info;
  return info.id;
}

bool Membership::complete() const {
  return registered(Role::kServer) == num_servers_ && registered(Role::kWorker) == num_workers_;
}

std::vector<protocol::NodeInfo> Membership::nodes(Role role) const {
  std::vector<protocol::NodeInfo> out;
  if (role == Role::kScheduler) return out;
  for (const auto& [rank, info] : RoleMap(role)) out.push_back(info);
  return out;
}

std::vector<protocol::NodeInfo> Membership::all() const {
  auto out = nodes(Role::kServer);
  auto w = nodes(Role::kWorker);
  out.insert(out.end(), w.begin(), w.end());
  return out;
}

}  // namespace tessera::scheduler
