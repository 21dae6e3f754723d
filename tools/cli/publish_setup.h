// Wires a train job's `publish:` keys and `--resume` into the scheduler:
// the manifest writer and version pruning for published versions
// (models/model_versions.h), and, on resume, the files the servers load and
// the data plan left to train.
#ifndef TESSERA_TOOLS_CLI_PUBLISH_SETUP_H_
#define TESSERA_TOOLS_CLI_PUBLISH_SETUP_H_

#include <vector>

#include "common/status.h"
#include "common/table_config.h"
#include "models/job_config.h"
#include "models/schema.h"
#include "scheduler/scheduler_node.h"

namespace tessera::cli {

// Sets options->publish from job.publish (nothing when it is off). With
// `resume`, also options->resume from the newest complete version in
// publish.model_dir (FailedPrecondition without publish.model_dir; a log
// line and a fresh start when nothing was published yet): every table's
// files along its chain (full snapshot first), its training_state, and the
// next version number. FailedPrecondition if that version was saved by
// another model (schema, model or tables differ).
Status SetUpPublishing(const models::JobConfig& job, const models::Schema& schema,
                       const std::vector<TableConfig>& tables, bool resume,
                       scheduler::SchedulerOptions* options);

}  // namespace tessera::cli

#endif  // TESSERA_TOOLS_CLI_PUBLISH_SETUP_H_
