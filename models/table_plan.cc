#include "models/table_plan.h"

#include <algorithm>

namespace tessera::models {

std::vector<TableConfig> PlanTables(const JobConfig& job, const Schema& schema, const Model& model) {
  std::vector<TableConfig> tables;
  for (size_t t = 0; t < schema.tables().size(); ++t) {
    TableConfig c;
    c.id = SparseTableId(static_cast<int>(t));
    c.name = schema.tables()[t];
    c.kind = TableKind::kSparse;
    c.dim = model.row_dim();
    c.optimizer = job.sparse_optimizer;
    c.initializer = {InitializerType::kUniform, kSparseInitScale, job.model.seed * 1000003 + t};
    if (auto it = job.tables.find(c.name); it != job.tables.end()) {
      c.admission = it->second.admission;
      c.eviction = it->second.eviction;
    }
    tables.push_back(c);
  }
  const std::vector<DenseBlock>& blocks = model.dense_blocks();
  for (size_t b = 0; b < blocks.size(); ++b) {
    TableConfig c;
    c.id = DenseTableId(schema, static_cast<int>(b));
    c.name = "dense." + blocks[b].name;
    c.kind = TableKind::kDense;
    c.size = blocks[b].size;
    c.optimizer = job.dense_optimizer;
    c.initializer = {blocks[b].init_stddev > 0 ? InitializerType::kNormal : InitializerType::kZeros,
                     blocks[b].init_stddev, job.model.seed * 7919 + b};
    tables.push_back(c);
  }
  return tables;
}

Status CheckTablePolicies(const JobConfig& job, const Schema& schema) {
  for (const auto& [name, policy] : job.tables) {
    const std::vector<std::string>& known = schema.tables();
    if (std::find(known.begin(), known.end(), name) == known.end()) {
      std::string list;
      for (const std::string& k : known) list += (list.empty() ? "" : ", ") + k;
      return InvalidArgumentError("tables." + name + ": the schema has no table '" + name +
                                  "' (tables: " + list + ")");
    }
  }
  return OkStatus();
}

}  // namespace tessera::models
