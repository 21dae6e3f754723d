// The user-facing binary: `tessera <subcommand> ...` (see `tessera --help`).
// Parses the command line with CLI11, then runs the selected subcommand.
#include <CLI/CLI.hpp>

#include "absl/synchronization/mutex.h"
#include "common/shutdown_signals.h"
#include "tools/cli/cluster_commands.h"
#include "tools/cli/command.h"
#include "tools/cli/forget_command.h"
#include "tools/cli/join_command.h"
#include "tools/cli/keygen_command.h"
#include "tools/cli/role_commands.h"
#include "tools/cli/serve_command.h"
#include "tools/cli/simulate_command.h"
#include "tools/cli/status_command.h"
#include "tools/cli/worker_programs.h"

int main(int argc, char** argv) {
  // Before any thread exists (ZeroMQ, HTTP, MPI): every thread inherits it.
  tessera::BlockShutdownSignals();
  // Debian's abseil checks every lock acquisition for deadlock cycles
  // (measured: 45-65 ns per lock instead of 7 ns; bench table
  // --deadlock_detection). Tests keep the check; the binary does not.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);

  const tessera::cli::WorkerProgramRegistry programs = tessera::cli::BuiltinWorkerPrograms();
  tessera::cli::Command selected;
  CLI::App app("Tessera: a parameter server for CTR and recommendation training.", "tessera");
  app.set_version_flag("--version", "tessera 0.1.0");
  app.require_subcommand(1);
  tessera::cli::AddRoleCommands(&app, &programs, &selected);
  tessera::cli::AddClusterCommands(&app, &programs, &selected);
  tessera::cli::AddServeCommand(&app, &selected);
  tessera::cli::AddForgetCommand(&app, &selected);
  tessera::cli::AddKeygenCommand(&app, &selected);
  tessera::cli::AddJoinCommand(&app, &selected);
  tessera::cli::AddSimulateCommand(&app, &selected);
  tessera::cli::AddPlannedCommands(&app, &selected);
  tessera::cli::AddStatusCommand(&app, &selected);
  CLI11_PARSE(app, argc, argv);
  return selected ? selected() : tessera::cli::kExitUsage;
}
