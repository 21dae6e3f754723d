// cluster.json: the launchers' record of a running cluster, one entry per
// process, read by later tooling (status, tests):
//
//   {"nodes": [{"role": "scheduler", "id": 0, "pid": 1234,
//               "addr": "tcp://127.0.0.1:5555", "metrics_port": 9100}, ...]}
//
// `id` is the rank within the role; entries come scheduler first, then
// servers and workers by rank. The scheduler writes it once the cluster runs.
#ifndef TESSERA_TOOLS_CLI_CLUSTER_FILE_H_
#define TESSERA_TOOLS_CLI_CLUSTER_FILE_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "common/types.h"
#include "protocols/codec.h"

namespace tessera::cli {

struct ClusterNodeRecord {
  Role role = Role::kScheduler;
  int32_t id = 0;
  int64_t pid = 0;
  std::string addr;
  int32_t metrics_port = 0;
  friend bool operator==(const ClusterNodeRecord&, const ClusterNodeRecord&) = default;
};

// Every process of a running cluster: the scheduler, then the view's nodes.
std::vector<ClusterNodeRecord> ClusterRecords(const protocol::NodeInfo& scheduler,
                                              const protocol::ClusterView& view);
std::string ClusterJson(const std::vector<ClusterNodeRecord>& nodes);
// InvalidArgument on malformed JSON or missing/mistyped fields.
StatusOr<std::vector<ClusterNodeRecord>> ParseClusterJson(std::string_view json);

// Writes `contents` to a temporary file beside `path` and renames it over
// `path`, so readers never see a partial file.
Status WriteFileAtomically(const std::string& path, std::string_view contents);
StatusOr<std::string> ReadWholeFile(const std::string& path);

}  // namespace tessera::cli

#endif  // TESSERA_TOOLS_CLI_CLUSTER_FILE_H_
