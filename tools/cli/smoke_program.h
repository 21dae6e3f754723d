// The "smoke" worker program: a quick end-to-end check that a cluster
// stores and updates parameters correctly. Each worker pulls rows of its own
// keys, pushes known gradients, and checks the rows moved by exactly
// -lr * gradient (SGD); then all workers push one gradient to a dense table
// and check it moved by -lr * num_workers * gradient. Used by the e2e tests
// and as `tessera local --program smoke`.
//
// Args: --hold    after verifying, keep the cluster up until it is told to
//                 stop (SIGINT/SIGTERM or a cluster shutdown), so tests can
//                 inspect the running processes.
#ifndef TESSERA_TOOLS_CLI_SMOKE_PROGRAM_H_
#define TESSERA_TOOLS_CLI_SMOKE_PROGRAM_H_

#include <string>
#include <vector>

#include "common/status.h"
#include "common/table_config.h"
#include "worker/worker_node.h"

namespace tessera::cli {

// "smoke_sparse" (id 0, dim 4, sgd) and "smoke_dense" (id 1, 64 floats, sgd).
std::vector<TableConfig> SmokeTables();

// DataLoss naming the key and element when a value is wrong.
Status RunSmokeProgram(worker::WorkerNode& node, const std::vector<std::string>& args);

}  // namespace tessera::cli

#endif  // TESSERA_TOOLS_CLI_SMOKE_PROGRAM_H_
