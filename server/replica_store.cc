#include "server/replica_store.h"

#include <algorithm>
#include <cstring>
#include <utility>
#include <vector>

namespace tessera::server {

Status ReplicaStore::ApplyRows(Copy& copy, const protocol::ReplicaRowsView& rows,
                               const ServerTable& table) {
  std::unique_ptr<EmbeddingTable>& replica = copy.sparse[rows.table];
  if (replica == nullptr) {
    EmbeddingTable::Options options;
    options.id = table.config.id;
    options.dim = table.config.dim;
    options.optimizer = table.optimizer.get();
    options.initializer = table.config.initializer;
    replica = std::make_unique<EmbeddingTable>(options);
  }
  TESSERA_RETURN_IF_ERROR(replica->InsertRecords(rows.records, /*mark_changed=*/false));
  for (Key key : rows.deleted) replica->Erase(key);
  if (!copy.tracking) return OkStatus();
  absl::flat_hash_set<Key>& tombstones = copy.tombstones[rows.table];
  if (!tombstones.empty()) {
    // Rows replicated again (re-created after their removal): no tombstone.
    const size_t record = replica->record_bytes();
    for (size_t at = 0; at + record <= rows.records.size(); at += record) {
      Key key;
      std::memcpy(&key, rows.records.data() + at, sizeof(key));
      tombstones.erase(key);
    }
  }
  tombstones.insert(rows.deleted.begin(), rows.deleted.end());
  return OkStatus();
}

Status ReplicaStore::Apply(int32_t primary, const protocol::ReplicateView& batch,
                           const TableSet& tables) {
  const BatchKey key{batch.epoch, batch.batch_id};
  if (auto it = copies_.find(primary); it != copies_.end()) {
    if (key < it->second.newest) {
      ++stale_messages_;
      return OkStatus();
    }
    if (batch.reset && key > it->second.full_copy) copies_.erase(it);
  }
  Copy& copy = copies_[primary];
  copy.newest = key;
  if (batch.reset) copy.full_copy = key;
  if (batch.captured) {
    // A capture point: the tombstones of earlier batches are in a version.
    // (A full copy's messages each carry the flag: the copy started empty.)
    if (!batch.reset) copy.tombstones.clear();
    copy.tracking = true;
  }
  for (const protocol::ReplicaRowsView& rows : batch.rows) {
    const ServerTable* table = tables.Find(rows.table);
    if (table == nullptr || table->sparse == nullptr) {
      return InvalidArgumentError("replicate: no sparse table " + std::to_string(rows.table));
    }
    TESSERA_RETURN_IF_ERROR(ApplyRows(copy, rows, *table));
  }
  for (const protocol::ReplicaDenseView& d : batch.dense) {
    const ServerTable* table = tables.Find(d.table);
    if (table == nullptr || table->config.kind != TableKind::kDense || d.end > table->config.size) {
      return InvalidArgumentError("replicate: no dense table " + std::to_string(d.table) +
                                  " with range [" + std::to_string(d.begin) + ", " +
                                  std::to_string(d.end) + ")");
    }
    DenseCopy& c = copy.dense[d.table][d.begin];
    c.end = d.end;
    c.step = d.step;
    c.values.assign(d.values.begin(), d.values.end());
    c.state.assign(d.state.begin(), d.state.end());
  }
  copy.ops.AddAll(batch.op_ids);
  return OkStatus();
}

StatusOr<size_t> ReplicaStore::PromoteInto(int32_t primary, const std::function<bool(Key)>& owned,
                                           TableSet& tables, AppliedOps& ops) {
  auto it = copies_.find(primary);
  if (it == copies_.end()) return size_t{0};
  Copy& copy = it->second;
  size_t moved = 0;
  for (auto& [id, replica] : copy.sparse) {
    const ServerTable* table = tables.Find(id);
    if (table == nullptr || table->sparse == nullptr) continue;
    std::vector<std::byte> records;
    replica->CopyAllRows(records);
    const size_t record = replica->record_bytes();
    std::vector<std::byte> kept;
    kept.reserve(records.size());
    for (size_t at = 0; at < records.size(); at += record) {
      Key key;
      std::memcpy(&key, records.data() + at, sizeof(key));
      if (!owned(key)) continue;
      kept.insert(kept.end(), records.begin() + static_cast<ptrdiff_t>(at),
                  records.begin() + static_cast<ptrdiff_t>(at + record));
      ++moved;
    }
    TESSERA_RETURN_IF_ERROR(table->sparse->InsertRecords(kept, /*mark_changed=*/true));
    std::vector<Key> tombstones;
    if (auto t = copy.tombstones.find(id); t != copy.tombstones.end()) {
      for (Key key : t->second) {
        if (owned(key)) tombstones.push_back(key);
      }
    }
    std::sort(tombstones.begin(), tombstones.end());
    table->sparse->AddTombstones(tombstones);
  }
  for (auto& [id, ranges] : copy.dense) {
    const ServerTable* table = tables.Find(id);
    if (table == nullptr || table->dense == nullptr) continue;
    for (auto& [begin, c] : ranges) {
      TESSERA_RETURN_IF_ERROR(table->dense->RestoreRange(begin, c.end, c.step, c.values, c.state));
    }
  }
  ops.AddAll(copy.ops.All());
  copies_.erase(it);
  return moved;
}

std::vector<int32_t> ReplicaStore::Primaries() const {
  std::vector<int32_t> out;
  for (const auto& [p, copy] : copies_) out.push_back(p);
  return out;
}

size_t ReplicaStore::num_rows(int32_t primary) const {
  auto it = copies_.find(primary);
  if (it == copies_.end()) return 0;
  size_t rows = 0;
  for (const auto& [id, t] : it->second.sparse) rows += t->num_rows();
  return rows;
}

size_t ReplicaStore::num_rows() const {
  size_t rows = 0;
  for (const auto& [p, copy] : copies_) rows += num_rows(p);
  return rows;
}

size_t ReplicaStore::memory_bytes() const {
  size_t bytes = 0;
  for (const auto& [p, copy] : copies_) {
    for (const auto& [id, t] : copy.sparse) bytes += t->memory_bytes();
    for (const auto& [id, ranges] : copy.dense) {
      for (const auto& [begin, c] : ranges) {
        bytes += (c.values.capacity() + c.state.capacity()) * sizeof(float);
      }
    }
  }
  return bytes;
}

size_t ReplicaStore::Erase(TableId table, std::span<const Key> keys) {
  size_t erased = 0;
  for (auto& [p, copy] : copies_) {
    auto it = copy.sparse.find(table);
    if (it == copy.sparse.end()) continue;
    for (Key key : keys) {
      if (!it->second->Erase(key)) continue;
      ++erased;
      if (copy.tracking) copy.tombstones[table].insert(key);
    }
  }
  return erased;
}

std::vector<Key> ReplicaStore::tombstones(int32_t primary, TableId table) const {
  std::vector<Key> out;
  auto it = copies_.find(primary);
  if (it == copies_.end()) return out;
  auto t = it->second.tombstones.find(table);
  if (t == it->second.tombstones.end()) return out;
  out.assign(t->second.begin(), t->second.end());
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace tessera::server
