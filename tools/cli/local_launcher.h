// `tessera local`: a whole cluster on this machine, one process per node.
//
// The launcher re-executes its own binary: first `tessera scheduler` (which
// writes its address to <output_dir>/scheduler.addr), then S `tessera
// server` and W `tessera worker --program P` processes pointed at it, all on
// 127.0.0.1 with port 0 everywhere. The cluster token goes to the children in
// the environment (TESSERA_CLUSTER_TOKEN). Once every node registered, the
// scheduler writes <output_dir>/cluster.json (tools/cli/cluster_file.h).
//
// Supervision: a child that fails, a startup timeout, or SIGINT/SIGTERM to
// the launcher stops every child (SIGTERM, then SIGKILL after a grace
// period). Children also get PR_SET_PDEATHSIG, so even a SIGKILLed launcher
// leaves no process behind. A worker other than worker 0 killed by a signal
// while the cluster runs is the exception: the scheduler hands its data to
// the other workers and the job goes on. Exit code: 0 when every node
// exited 0 (or was such a worker), 128+signo when interrupted, 1 otherwise.
#ifndef TESSERA_TOOLS_CLI_LOCAL_LAUNCHER_H_
#define TESSERA_TOOLS_CLI_LOCAL_LAUNCHER_H_

#include "tools/cli/cluster_spec.h"
#include "tools/cli/worker_programs.h"

namespace tessera::cli {

// REQUIRES: BlockShutdownSignals() was called and the process has no other
// thread (children are forked).
int RunLocalCluster(const ClusterSpec& spec, const WorkerProgramRegistry& programs);

}  // namespace tessera::cli

#endif  // TESSERA_TOOLS_CLI_LOCAL_LAUNCHER_H_
