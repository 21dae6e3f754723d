// The user-facing binary: `tessera <subcommand> ...` (see `tessera --help`).
// Parses the command line with CLI11, then runs the selected subcommand.
#include <CLI/CLI.hpp>

#include "common/shutdown_signals.h"
#include "tools/cli/cluster_commands.h"
#include "tools/cli/command.h"
#include "tools/cli/role_commands.h"
#include "tools/cli/worker_programs.h"

int main(int argc, char** argv) {
  // Before any thread exists (ZeroMQ, HTTP, MPI): every thread inherits it.
  tessera::BlockShutdownSignals();

  const tessera::cli::WorkerProgramRegistry programs = tessera::cli::BuiltinWorkerPrograms();
  tessera::cli::Command selected;
  CLI::App app("Tessera: a parameter server for CTR and recommendation training.", "tessera");
  app.set_version_flag("--version", "tessera 0.1.0");
  app.require_subcommand(1);
  tessera::cli::AddRoleCommands(&app, &programs, &selected);
  tessera::cli::AddClusterCommands(&app, &programs, &selected);
  tessera::cli::AddPlannedCommands(&app, &selected);
  CLI11_PARSE(app, argc, argv);
  return selected ? selected() : tessera::cli::kExitUsage;
}
