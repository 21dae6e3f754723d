// A backup server's copies of other servers' shards (primary-backup
// replication, server/replicator.h is the primary's side). One copy per
// primary rank: its sparse rows (kept in EmbeddingTables without admission
// or eviction: the primary decides both and replicates the outcome), its
// dense ranges and the operation ids it applied. Copies never serve
// requests; when the scheduler promotes this server in a primary's place,
// PromoteInto moves the copy into the server's own tables.
//
// Tombstones. Rows the primary evicted (or forgot) since it last captured a
// version are in no published version's tombstones yet: the primary would
// have put them in its next delta. So once the primary tracks changes
// (ReplicateRequest.captured), a copy keeps the keys its batches delete,
// drops them at each capture point the primary marks, and PromoteInto makes
// them tombstones of the promoted server's next delta. A key deleted and
// then replicated again (re-created) is no tombstone: its row is promoted.
//
// Thread-compatible (the server's receive thread owns it).
#ifndef TESSERA_SERVER_REPLICA_STORE_H_
#define TESSERA_SERVER_REPLICA_STORE_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "common/status.h"
#include "common/types.h"
#include "protocols/codec.h"
#include "server/applied_ops.h"
#include "server/embedding_table.h"
#include "server/table_set.h"

namespace tessera::server {

class ReplicaStore {
 public:
  // Applies one message of a batch from `primary`. Tables come from
  // `tables` (configs and optimizers). A message older (epoch, batch_id)
  // than the newest applied from `primary` is stale (a late or duplicated
  // copy of one the primary resent) and ignored; the first message of a
  // newer full copy (reset) makes the copy start over. InvalidArgument for
  // an unknown table, a table of the wrong kind or malformed records; the
  // part of the batch before the error stays applied (the primary resends
  // the rows' state later, so this is never a lost update).
  Status Apply(int32_t primary, const protocol::ReplicateView& batch, const TableSet& tables);
  // Messages Apply ignored as stale, since construction.
  uint64_t stale_messages() const { return stale_messages_; }

  // Moves the copy of `primary` into `tables`: rows whose key `owned` selects
  // (marked changed, for the next delta), its tombstones of those keys
  // (EmbeddingTable::AddTombstones), dense ranges (the part inside the
  // dense shards' ranges: call TableSet::ReshardDense first) and operation
  // ids (into `ops`). The copy is dropped. Returns the rows moved.
  StatusOr<size_t> PromoteInto(int32_t primary, const std::function<bool(Key)>& owned,
                               TableSet& tables, AppliedOps& ops);

  void Drop(int32_t primary) { copies_.erase(primary); }
  bool Has(int32_t primary) const { return copies_.contains(primary); }
  // The primaries this server holds copies of.
  std::vector<int32_t> Primaries() const;
  size_t num_rows(int32_t primary) const;
  size_t num_rows() const;
  size_t memory_bytes() const;
  // Removes `keys` from every copy of table `table` (tombstones of copies
  // whose primary tracks changes); returns rows removed.
  size_t Erase(TableId table, std::span<const Key> keys);
  // The tombstones kept for `primary`'s table `table`, sorted.
  std::vector<Key> tombstones(int32_t primary, TableId table) const;

 private:
  struct DenseCopy {
    uint64_t end = 0;
    uint32_t step = 0;
    std::vector<float> values;
    std::vector<float> state;
  };
  using BatchKey = std::pair<uint64_t, uint64_t>;  // (epoch, batch_id)
  struct Copy {
    BatchKey newest{0, 0};      // the newest batch applied
    BatchKey full_copy{0, 0};   // the full copy the rows derive from
    std::map<TableId, std::unique_ptr<EmbeddingTable>> sparse;
    std::map<TableId, std::map<uint64_t, DenseCopy>> dense;  // by range begin
    AppliedOps ops;
    // The primary tracks changes (ReplicateRequest.captured): `tombstones`
    // holds the keys deleted since its last capture point that have no row.
    bool tracking = false;
    std::map<TableId, absl::flat_hash_set<Key>> tombstones;
  };

  // Applies one table's rows and deletions to `copy`.
  static Status ApplyRows(Copy& copy, const protocol::ReplicaRowsView& rows,
                          const ServerTable& table);

  std::map<int32_t, Copy> copies_;
  uint64_t stale_messages_ = 0;
};

}  // namespace tessera::server

#endif  // TESSERA_SERVER_REPLICA_STORE_H_
