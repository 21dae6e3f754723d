// Launching a cluster with mpirun: `mpirun -np N tessera local --servers S
// ...` (or `tessera bench kv ...`). MPI is only the bootstrap; the data plane
// stays ZeroMQ.
//
// Layout over MPI_COMM_WORLD: rank 0 is the scheduler, ranks 1..S the
// servers (requested rank = mpi_rank - 1), ranks S+1..N-1 the workers
// (requested rank = mpi_rank - 1 - S). Rank 0 binds, then broadcasts its
// address and the cluster token (TESSERA_CLUSTER_TOKEN, --token-file, or a
// fresh random one) with MPI_Bcast, so nobody types addresses. Addresses:
// with TESSERA_INTERFACE=NAME (or Open MPI's --mca btl_tcp_if_include NAME,
// the interface MPI itself uses) each rank binds to and advertises its own
// IPv4 address on that interface; otherwise, when every rank runs on one
// host the nodes talk over 127.0.0.1, else they advertise the host name.
// deploy/mpi/tessera_mpirun.sh wraps this. Every rank calls MPI_Finalize
// before returning.
#ifndef TESSERA_TOOLS_CLI_MPI_BOOTSTRAP_H_
#define TESSERA_TOOLS_CLI_MPI_BOOTSTRAP_H_

#include "tools/cli/cluster_spec.h"
#include "tools/cli/worker_programs.h"

namespace tessera::cli {

inline constexpr char kInterfaceEnv[] = "TESSERA_INTERFACE";

// True when this process was started by mpirun/mpiexec (Open MPI, PMIx or
// MPICH environment variables).
bool LaunchedByMpi();

// Runs this rank's node; returns its exit code (mpirun fails if any rank
// does). REQUIRES: LaunchedByMpi(); BlockShutdownSignals() was called.
int RunMpiCluster(const ClusterSpec& spec, const WorkerProgramRegistry& programs);

}  // namespace tessera::cli

#endif  // TESSERA_TOOLS_CLI_MPI_BOOTSTRAP_H_
