// Saving the trained model (models/saved_model.h): every server writes its
// part of every table, then the manifest is written last.
//
// Thread safety: thread-safe (uses the node's thread-safe messenger); call it
// from one worker, after training stopped.
#ifndef TESSERA_WORKER_MODEL_SAVER_H_
#define TESSERA_WORKER_MODEL_SAVER_H_

#include <string>

#include "common/deadline.h"
#include "common/status.h"
#include "models/job_config.h"
#include "models/model.h"
#include "models/schema.h"
#include "worker/worker_node.h"

namespace tessera::worker {

// Saves the model the cluster trained to `model_dir` (usually
// <output_dir>/model): removes an old manifest (so readers never see a
// mixed model), sends a SaveRequest to every server in parallel and waits
// for all of them, then writes manifest.json listing
// <table>/part-<rank>.rows of every table and server. With several
// processes, `model_dir` must be on a filesystem the servers share; it is
// made absolute here, against this process's working directory.
//
// REQUIRES: `node` started; training stopped (pushes during the save make
// rows of different steps; each row is still consistent).
// Errors: FailedPrecondition if the cluster's tables are not this job's
// plan; a server's error (naming the server); DeadlineExceeded.
//
// Example:
//   TESSERA_RETURN_IF_ERROR(SaveModel(node, job, schema, *model,
//                                     job.output_dir + "/model", DeadlineIn(10min)));
Status SaveModel(WorkerNode& node, const models::JobConfig& job, const models::Schema& schema,
                 const models::Model& model, const std::string& model_dir, SteadyTime deadline);

}  // namespace tessera::worker

#endif  // TESSERA_WORKER_MODEL_SAVER_H_
