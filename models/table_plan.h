// The parameter-server tables a job needs, derived from its configuration:
// one sparse table per schema table (row = the model's row_dim floats) and
// one dense table per dense block of the model. Table ids are positional
// (schema tables first, then dense blocks), so the scheduler, the workers
// and saved models agree on them without coordination.
#ifndef TESSERA_MODELS_TABLE_PLAN_H_
#define TESSERA_MODELS_TABLE_PLAN_H_

#include <vector>

#include "common/table_config.h"
#include "models/job_config.h"
#include "models/model.h"
#include "models/schema.h"

namespace tessera::models {

// Initial values of sparse rows: uniform in [-kSparseInitScale, +scale].
inline constexpr float kSparseInitScale = 0.01f;

// Sparse tables take their admission and eviction from job.tables[name].
std::vector<TableConfig> PlanTables(const JobConfig& job, const Schema& schema, const Model& model);

// InvalidArgument naming the first `tables:` entry of the job that is not a
// table of the schema.
Status CheckTablePolicies(const JobConfig& job, const Schema& schema);

// Id of schema table `t` and of dense block `b`.
inline TableId SparseTableId(int t) { return static_cast<TableId>(t); }
inline TableId DenseTableId(const Schema& schema, int b) {
  return static_cast<TableId>(schema.tables().size() + b);
}

}  // namespace tessera::models

#endif  // TESSERA_MODELS_TABLE_PLAN_H_
