// The tables one server holds, created from the scheduler's table
// configuration. Applying the same configuration again is a no-op
// (idempotent); a different configuration for an existing table id is
// refused. Sparse tables keep all their rows here; dense tables keep the
// ranges of the slots this server owns.
//
// Thread-safe (one mutex guards the map; the tables are thread-safe).
#ifndef TESSERA_SERVER_TABLE_SET_H_
#define TESSERA_SERVER_TABLE_SET_H_

#include <map>
#include <memory>
#include <span>
#include <vector>

#include "common/mutex.h"
#include "common/sharding.h"
#include "common/table_config.h"
#include "server/dense_shard.h"
#include "server/embedding_table.h"
#include "server/optimizer/optimizer.h"

namespace tessera::server {

struct ServerTable {
  TableConfig config;
  std::unique_ptr<Optimizer> optimizer;
  std::unique_ptr<EmbeddingTable> sparse;  // kind == kSparse
  std::unique_ptr<DenseShard> dense;       // kind == kDense; null if no range owned
};

class TableSet {
 public:
  // Creates the tables not present yet. `shard_map` and `self_rank` decide
  // the dense ranges this server owns. FailedPrecondition if a table id
  // exists with another configuration; InvalidArgument for a bad config.
  Status Apply(std::span<const TableConfig> configs, const ShardMap& shard_map, int32_t self_rank);
  // After a shard map change (failover): gives every dense table the ranges
  // `self_rank` owns under `shard_map`, keeping the values, state and step
  // of the elements it owned before; newly owned elements start from their
  // initial values (restore them from a replica). REQUIRES: no concurrent
  // use of the dense shards (the server's receive thread calls both).
  Status ReshardDense(const ShardMap& shard_map, int32_t self_rank);
  // nullptr if unknown. The pointer stays valid for the TableSet's lifetime
  // (tables are never removed).
  const ServerTable* Find(TableId id) const;
  std::vector<const ServerTable*> All() const;
  size_t size() const;

 private:
  mutable Mutex mu_;
  std::map<TableId, std::unique_ptr<ServerTable>> tables_ TESSERA_GUARDED_BY(mu_);
};

}  // namespace tessera::server

#endif  // TESSERA_SERVER_TABLE_SET_H_
