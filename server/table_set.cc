#include "server/table_set.h"

#include <utility>

namespace tessera::server {

Status TableSet::Apply(std::span<const TableConfig> configs, const ShardMap& shard_map,
                       int32_t self_rank) {
  MutexLock lock(&mu_);
  for (const TableConfig& config : configs) {
    TESSERA_RETURN_IF_ERROR(ValidateTableConfig(config));
    auto it = tables_.find(config.id);
    if (it != tables_.end()) {
      if (it->second->config == config) continue;
      return FailedPreconditionError("table " + std::to_string(config.id) + " ('" + config.name +
                                     "') already exists with another configuration");
    }
    auto table = std::make_unique<ServerTable>();
    table->config = config;
    TESSERA_ASSIGN_OR_RETURN(table->optimizer, NewOptimizer(config.optimizer));
    if (config.kind == TableKind::kSparse) {
      EmbeddingTable::Options options;
      options.id = config.id;
      options.dim = config.dim;
      options.optimizer = table->optimizer.get();
      options.initializer = config.initializer;
      options.admission = config.admission;
      options.admission_seed = config.initializer.seed ^ config.id;
      options.eviction = config.eviction;
      table->sparse = std::make_unique<EmbeddingTable>(options);
    } else {
      DenseShard::Options options;
      options.id = config.id;
      options.size = config.size;
      options.ranges = shard_map.DenseRangesOf(self_rank, config.size);
      options.optimizer = table->optimizer.get();
      options.initializer = config.initializer;
      // A server may own no element of a small dense table: then it has no
      // shard, and clients never send it that table's requests.
      if (!options.ranges.empty()) {
        TESSERA_ASSIGN_OR_RETURN(table->dense, DenseShard::Create(options));
      }
    }
    tables_.emplace(config.id, std::move(table));
  }
  return OkStatus();
}

Status TableSet::ReshardDense(const ShardMap& shard_map, int32_t self_rank) {
  MutexLock lock(&mu_);
  for (auto& [id, table] : tables_) {
    if (table->config.kind != TableKind::kDense) continue;
    std::vector<DenseRange> ranges = shard_map.DenseRangesOf(self_rank, table->config.size);
    const std::vector<DenseRange> before =
        table->dense ? table->dense->ranges() : std::vector<DenseRange>();
    auto same = [](const std::vector<DenseRange>& a, const std::vector<DenseRange>& b) {
      if (a.size() != b.size()) return false;
      for (size_t i = 0; i < a.size(); ++i) {
        if (a[i].begin != b[i].begin || a[i].end != b[i].end) return false;
      }
      return true;
    };
    if (same(ranges, before)) continue;
    std::unique_ptr<DenseShard> next;
    if (!ranges.empty()) {
      DenseShard::Options options;
      options.id = table->config.id;
      options.size = table->config.size;
      options.ranges = std::move(ranges);
      options.optimizer = table->optimizer.get();
      options.initializer = table->config.initializer;
      TESSERA_ASSIGN_OR_RETURN(next, DenseShard::Create(options));
      if (table->dense != nullptr) {
        Status copied;
        table->dense->ForEachRange([&](const DenseShard::RangeView& r) {
          if (copied.ok()) copied = next->RestoreRange(r.begin, r.end, r.step, r.values, r.state);
        });
        TESSERA_RETURN_IF_ERROR(copied);
      }
    }
    table->dense = std::move(next);
  }
  return OkStatus();
}

const ServerTable* TableSet::Find(TableId id) const {
  MutexLock lock(&mu_);
  auto it = tables_.find(id);
  return it == tables_.end() ? nullptr : it->second.get();
}

std::vector<const ServerTable*> TableSet::All() const {
  MutexLock lock(&mu_);
  std::vector<const ServerTable*> out;
  for (const auto& [id, table] : tables_) out.push_back(table.get());
  return out;
}

size_t TableSet::size() const {
  MutexLock lock(&mu_);
  return tables_.size();
}

}  // namespace tessera::server
