#include "tools/cli/cluster_spec.h"

#include "tools/cli/local_launcher.h"
#include "tools/cli/mpi_bootstrap.h"
#include "tools/cli/node_flags.h"

namespace tessera::cli {

void AddClusterFlags(CLI::App* app, ClusterSpec* spec) {
  AddLogLevelFlag(app, &spec->log_level);
  app->add_option("--servers", spec->servers, "Number of servers")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app->add_option("--workers", spec->workers, "Number of workers (under mpirun: np - 1 - servers)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app->add_option("--table", spec->table_specs,
                  "A table, name:sparse:DIM:OPT[:LR] or name:dense:SIZE:OPT[:LR] (repeatable; "
                  "default: the program's tables)");
  app->add_option("--output-dir", spec->output_dir,
                  "Where cluster.json goes (default: a new directory under $TMPDIR)");
  app->add_option("--token-file", spec->token_file,
                  "File holding the cluster token (env TESSERA_CLUSTER_TOKEN wins; default: a "
                  "fresh random token)");
  app->add_option("--curve-dir", spec->curve_dir,
                  "CurveZMQ key directory from `tessera keygen`: encrypt every link")
      ->envname(kCurveDirEnv);
  app->add_option("--heartbeat-interval-ms", spec->heartbeat_interval_ms, "Heartbeat period")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app->add_option("--heartbeat-timeout-ms", spec->heartbeat_timeout_ms,
                  "A node silent this long is declared dead")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app->add_option("--startup-timeout-s", spec->startup_timeout_s,
                  "Seconds allowed for the cluster to assemble")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
}

void MarkGivenFlags(const CLI::App& app, ClusterSpec* spec) {
  spec->workers_given = app.count("--workers") > 0;
}

int LaunchCluster(const ClusterSpec& spec, const WorkerProgramRegistry& programs) {
  return LaunchedByMpi() ? RunMpiCluster(spec, programs) : RunLocalCluster(spec, programs);
}

}  // namespace tessera::cli
