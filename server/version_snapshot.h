// A server's part of a published model version (models/model_versions.h for
// the directory format), in two phases so that training stalls only for the
// in-memory copy:
//   1. CaptureVersion copies, table by table, every row (full) or the rows
//      changed and keys deleted since the previous capture (delta), each row
//      under its stripe lock, plus every owned dense range. Milliseconds for
//      a delta: the cost is the changed rows, not the table.
//   2. WriteCapturedVersion writes the copy to
//        <dir>/<table>/part-<rank>.rows     (RowFileRelativePath)
//      sparse files flagged is_delta for a delta (changed rows, then
//      tombstones), dense files always whole; every file carries optimizer
//      state (resuming needs it; serving skips it). SnapshotWriter runs this
//      phase on its own thread.
// RestoreTables is the way back: it loads a full snapshot and the deltas
// after it into this server's tables, keeping only what this server owns
// under the current shard map (so a model saved by N servers loads on M).
//
// Thread safety: CaptureVersion and RestoreTables are thread-safe (the tables
// are); SnapshotWriter is thread-safe.
#ifndef TESSERA_SERVER_VERSION_SNAPSHOT_H_
#define TESSERA_SERVER_VERSION_SNAPSHOT_H_

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "common/sharding.h"
#include "common/status.h"
#include "protocols/codec.h"
#include "server/table_set.h"

namespace tessera::server {

struct CapturedDenseRange {
  uint64_t begin = 0;
  uint64_t end = 0;
  uint32_t step = 0;
  std::vector<float> values;
  std::vector<float> state;  // planar
};

struct CapturedTable {
  TableConfig config;
  uint32_t state_floats = 0;             // per row (sparse) or per element (dense)
  EmbeddingTable::Captured sparse;       // kind == kSparse
  std::vector<CapturedDenseRange> dense;  // kind == kDense
};

struct CapturedVersion {
  protocol::SnapshotInfo info;  // version, directory, full or delta
  int32_t rank = kUnassignedRank;
  std::vector<CapturedTable> tables;
  size_t sparse_rows() const;
};

// Phase 1 (see the file comment). The first capture of a table must be full
// (it starts change tracking); FailedPrecondition for an unassigned rank.
StatusOr<CapturedVersion> CaptureVersion(const TableSet& tables, int32_t rank,
                                         const protocol::SnapshotInfo& info);

// Phase 2: writes every table's file, each atomically (row_file.h).
Status WriteCapturedVersion(const CapturedVersion& version);

// Loads each table's files in order (a full snapshot, then deltas: for a
// delta, its tombstones erase rows before its rows are applied), keeping the
// sparse rows whose key `shard_map` assigns to `rank` and the parts of dense
// ranges this server owns. Errors name the file: DataLoss for a corrupt one,
// FailedPrecondition for a file of another table or shape, NotFound for an
// unknown table id.
Status RestoreTables(const TableSet& tables, std::span<const protocol::RestoreTable> files,
                     const ShardMap& shard_map, int32_t rank);

// Writes captured versions in order on a background thread.
class SnapshotWriter {
 public:
  SnapshotWriter();
  ~SnapshotWriter();  // Writes what is queued, then joins.
  SnapshotWriter(const SnapshotWriter&) = delete;
  SnapshotWriter& operator=(const SnapshotWriter&) = delete;

  void Enqueue(CapturedVersion version);
  // Calls `done` (on the writer thread, or right here if already known) with
  // the result of writing `version`: NotFound if it was never enqueued.
  void WhenWritten(uint64_t version, std::function<void(Status)> done);

 private:
  void Run();

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<CapturedVersion> queue_;                          // guarded by mu_
  std::map<uint64_t, Status> written_;                         // guarded by mu_ (recent)
  std::multimap<uint64_t, std::function<void(Status)>> waiters_;  // guarded by mu_
  bool stop_ = false;                                          // guarded by mu_
  std::thread thread_;
};

}  // namespace tessera::server

#endif  // TESSERA_SERVER_VERSION_SNAPSHOT_H_
