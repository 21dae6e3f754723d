// `tessera local` (a whole cluster: local processes, or the ranks of an
// mpirun job), `tessera bench ...`, and the subcommands planned for later
// issues (which say so and exit 2).
#ifndef TESSERA_TOOLS_CLI_CLUSTER_COMMANDS_H_
#define TESSERA_TOOLS_CLI_CLUSTER_COMMANDS_H_

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "tools/cli/command.h"
#include "tools/cli/worker_programs.h"

namespace tessera::cli {

// `local` and `bench` (kv, table, capacity, transport). `programs` must
// outlive *selected.
void AddClusterCommands(CLI::App* app, const WorkerProgramRegistry* programs, Command* selected);

// The arguments CLI11 did not recognize, in order (a "--" dropped): what a
// pass-through subcommand hands to its program. REQUIRES: cmd allows extras.
std::vector<std::string> PassThroughArgs(const CLI::App& cmd);

// gen (tools/cli/gen_command.h). Nothing is left planned: the name stays
// for main().
void AddPlannedCommands(CLI::App* app, Command* selected);

}  // namespace tessera::cli

#endif  // TESSERA_TOOLS_CLI_CLUSTER_COMMANDS_H_
