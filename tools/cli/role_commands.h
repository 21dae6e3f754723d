// `tessera scheduler`, `tessera server` and `tessera worker`: one node per
// process, configured by flags and the environment (the shape k8s and
// hand-started clusters use). Also the builders of the role mains' args,
// shared with the MPI bootstrap.
#ifndef TESSERA_TOOLS_CLI_ROLE_COMMANDS_H_
#define TESSERA_TOOLS_CLI_ROLE_COMMANDS_H_

#include <CLI/CLI.hpp>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "common/curve_keys.h"
#include "common/table_config.h"
#include "scheduler/scheduler_main.h"
#include "server/server_main.h"
#include "tools/cli/command.h"
#include "tools/cli/node_flags.h"
#include "tools/cli/worker_programs.h"
#include "worker/worker_main.h"

namespace tessera::cli {

struct HeartbeatFlags {
  int interval_ms = 1000;
  int timeout_ms = 5000;
};

// `curve`: the cluster's CurveZMQ keys (LoadCurveKeys()), std::nullopt for
// plaintext; the role main builds its transport with them.
scheduler::SchedulerMainArgs MakeSchedulerArgs(const NodeFlags& node, int servers, int workers,
                                               std::vector<TableConfig> tables,
                                               const std::string& token,
                                               const std::optional<CurveKeys>& curve,
                                               const HeartbeatFlags& heartbeat);
server::ServerMainArgs MakeServerArgs(const NodeFlags& node, const std::string& token,
                                      const std::optional<CurveKeys>& curve);
worker::WorkerMainArgs MakeWorkerArgs(const NodeFlags& node, const std::string& token,
                                      const std::optional<CurveKeys>& curve,
                                      const WorkerProgramSpec& program,
                                      std::vector<std::string> program_args);
// An on_running hook that writes cluster.json to `path`.
std::function<Status(const protocol::NodeInfo&, const protocol::ClusterView&)> ClusterFileWriter(
    std::string path);

// Registers the three subcommands; parsing one stores what to run in
// *selected. `programs` must outlive *selected.
void AddRoleCommands(CLI::App* app, const WorkerProgramRegistry* programs, Command* selected);

}  // namespace tessera::cli

#endif  // TESSERA_TOOLS_CLI_ROLE_COMMANDS_H_
