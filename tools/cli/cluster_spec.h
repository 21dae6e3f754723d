// What a cluster launcher starts: the shape of the cluster, the worker
// program and its tables. Shared by `tessera local`, `tessera bench kv` and
// their MPI variants (tools/cli/mpi_bootstrap.h).
#ifndef TESSERA_TOOLS_CLI_CLUSTER_SPEC_H_
#define TESSERA_TOOLS_CLI_CLUSTER_SPEC_H_

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "tools/cli/worker_programs.h"

namespace tessera::cli {

struct ClusterSpec {
  int servers = 1;
  int workers = 1;
  // Whether --workers was given; under MPI the worker count otherwise
  // follows from the number of ranks.
  bool workers_given = false;
  std::string program;                    // a WorkerProgramRegistry name
  std::vector<std::string> program_args;  // passed to the program
  std::vector<std::string> table_specs;   // --table; empty: the program's tables
  int heartbeat_interval_ms = 1000;
  int heartbeat_timeout_ms = 5000;
  // cluster.replication of the job: with 2 or more, a server killed by a
  // signal is survived like a worker (the scheduler promotes its backup).
  int replication = 1;
  std::string log_level = "info";
  // Where cluster.json (and the scheduler's address file) go; empty: a new
  // directory under $TMPDIR (or /tmp).
  std::string output_dir;
  std::string token_file;  // else TESSERA_CLUSTER_TOKEN, else a fresh token
  // CurveZMQ key directory (`tessera keygen`), else TESSERA_CURVE_DIR, else
  // none (plaintext). Every node of the cluster gets it.
  std::string curve_dir;
  int startup_timeout_s = 120;
  // A following or streaming job: the first SIGINT/SIGTERM goes to the
  // scheduler alone, which closes the input and lets the job drain (finish
  // queued data, publish a last version, exit 0); a second stops every node.
  bool drain_on_signal = false;
};

// --servers, --workers, --table, --output-dir, --token-file, --curve-dir,
// --heartbeat-interval-ms, --heartbeat-timeout-ms, --startup-timeout-s,
// --log-level. Call MarkGivenFlags() after parsing.
void AddClusterFlags(CLI::App* app, ClusterSpec* spec);
void MarkGivenFlags(const CLI::App& app, ClusterSpec* spec);

// Starts the cluster and returns the exit code: under mpirun the ranks
// become the nodes (RunMpiCluster), otherwise this process launches every
// node as a child process (RunLocalCluster).
int LaunchCluster(const ClusterSpec& spec, const WorkerProgramRegistry& programs);

}  // namespace tessera::cli

#endif  // TESSERA_TOOLS_CLI_CLUSTER_SPEC_H_
