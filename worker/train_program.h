// What a worker process of `tessera train` does once it joined the cluster:
// train through the data the scheduler hands out; then all workers meet at a
// barrier and worker 0 evaluates the held-out data (writing
// <output_dir>/eval.json and printing it next to the data's Bayes-optimal
// AUC when <data dir>/bayes.json exists) after saving the model under
// <output_dir>/model/. Worker 0 also writes <output_dir>/train.json
// (examples over all workers, training wall time, samples/s).
#ifndef TESSERA_WORKER_TRAIN_PROGRAM_H_
#define TESSERA_WORKER_TRAIN_PROGRAM_H_

#include <string>

#include "models/job_config.h"
#include "models/metrics.h"
#include "worker/worker_node.h"

namespace tessera::worker {

Status RunTrainJob(WorkerNode& node, const models::JobConfig& job);

// {"auc": ..., "logloss": ..., "gauc": ..., "calibration": ..., "samples": ...}
// (null for a metric that is undefined, e.g. AUC with one class).
std::string EvalJson(const models::EvalMetrics& m);

}  // namespace tessera::worker

#endif  // TESSERA_WORKER_TRAIN_PROGRAM_H_
