// `tessera status`: the state of a running cluster, from the scheduler's
// status document (GET /v1/status on its HTTP port, the one that also serves
// /metrics; scheduler/cluster_status.h): nodes, shards, workers, progress
// and the newest model version, as tables or (--json) the document itself;
// --serve adds each `tessera serve`'s A/B results (GET /v1/ab); --watch
// refreshes.
#ifndef TESSERA_TOOLS_CLI_STATUS_COMMAND_H_
#define TESSERA_TOOLS_CLI_STATUS_COMMAND_H_

#include <chrono>
#include <string>
#include <string_view>

#include <CLI/CLI.hpp>

#include "common/status.h"
#include "tools/cli/command.h"

namespace tessera::cli {

struct HttpAddress {
  std::string host;
  int port = 0;
};

// "HOST:PORT" (or ":PORT", meaning 127.0.0.1). InvalidArgument otherwise.
StatusOr<HttpAddress> ParseHttpAddress(std::string_view text);
// The scheduler's HTTP address from <dir>/cluster.json (its host from its
// data-plane address, 0.0.0.0 read as 127.0.0.1, and its metrics_port).
StatusOr<HttpAddress> SchedulerHttpOfRun(const std::string& dir);
// GET http://host:port/v1/status. Unavailable when nothing answers (a
// stopped scheduler), Internal for a non-200 reply.
StatusOr<std::string> FetchClusterStatus(const HttpAddress& address,
                                         std::chrono::milliseconds timeout);
// GET http://host:port/v1/ab of a `tessera serve` (serving/ab_results.h);
// errors as above.
StatusOr<std::string> FetchAbResults(const HttpAddress& address,
                                     std::chrono::milliseconds timeout);
// The document as text tables. InvalidArgument if it is not a status
// document.
StatusOr<std::string> RenderStatusTable(std::string_view json);
// A serve's A/B results as lines, one per arm: impressions, clicks, CTR with
// its 95% interval, and the arm's test against the control. InvalidArgument
// if it is not an A/B document.
StatusOr<std::string> RenderAbTable(std::string_view json, std::string_view serve);

void AddStatusCommand(CLI::App* app, Command* selected);

}  // namespace tessera::cli

#endif  // TESSERA_TOOLS_CLI_STATUS_COMMAND_H_
