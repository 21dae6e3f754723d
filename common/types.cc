#include "common/types.h"

namespace tessera {

std::string_view RoleName(Role role) {
  switch (role) {
    case Role::kScheduler:
      return "scheduler";
    case Role::kServer:
      return "server";
    case Role::kWorker:
      return "worker";
  }
  return "unknown";
}

bool ParseRole(std::string_view text, Role* role) {
  for (Role r : {Role::kScheduler, Role::kServer, Role::kWorker}) {
    if (text == RoleName(r)) {
      *role = r;
      return true;
    }
  }
  return false;
}

std::string NodeId::ToString() const {
  return std::string(RoleName(role)) + "/" + std::to_string(rank);
}

}  // namespace tessera
