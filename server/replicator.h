// The primary's side of primary-backup replication (server/replica_store.h
// is the backups' side). The server notes what each push changed (rows,
// dense tables, operation ids) and hands over the push's reply; the
// replicator sends the changes to every backup in batches and releases a
// reply once a batch holding its changes is acknowledged by every backup.
// So a push is acknowledged only after every backup has it.
//
// Batches carry the rows' current state (value, optimizer state, header),
// read when the batch is built, not the gradients: pushes of many workers
// to one row between two batches travel as one row (the aggregated update
// of the Parameter Server paper), and the backup needs no optimizer
// determinism, admission or eviction of its own. One batch is in flight at
// a time; changes noted meanwhile go into the next one (group commit).
// A message unacknowledged within the request timeout (lost, or its ack
// lost) is sent again, with backoff; batches are numbered, so the backup
// ignores a late copy of a message older than the newest it applied, and
// its copy is the primary's state as of the last batch it applied.
//
// A new set of backups (a cluster view after a failure) abandons the batch
// in flight and starts with a full copy (reset) to every backup; the
// replies held are released once that copy is acknowledged.
//
// Tombstones. Removed rows travel as `deleted` keys. Once the tables track
// changes for versions, batches say so (`captured`), and the first batch
// built after a capture (NoteCapture) marks the capture point: the backups
// keep the tombstones since then, which a promoted backup publishes in the
// place of the dead primary (server/replica_store.h). A full copy carries
// the tables' tombstones since their last capture.
//
// Threading: every method runs on the server's receive thread (the
// Messenger's reply callbacks run there too). Not thread-safe.
#ifndef TESSERA_SERVER_REPLICATOR_H_
#define TESSERA_SERVER_REPLICATOR_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "common/metrics.h"
#include "protocols/codec.h"
#include "protocols/messenger.h"
#include "server/applied_ops.h"
#include "server/table_set.h"

namespace tessera::server {

class Replicator {
 public:
  // Full copies are split into messages of about this many record bytes.
  static constexpr size_t kMaxBatchBytes = size_t{32} << 20;

  // All borrowed; must outlive this.
  Replicator(protocol::Messenger* messenger, const TableSet* tables, const AppliedOps* ops,
             MetricsRegistry* metrics);

  // When SetBackups starts over with a full copy.
  enum class Resync {
    kNever,      // the tables are empty (just configured): nothing to copy
    kIfChanged,  // only if the backups differ from before
    kAlways,     // the rows changed wholesale (restore, promotion)
  };
  // Sets the backups for cluster view `epoch`. A full copy abandons the
  // batch in flight and goes first. No backups: held replies are sent at
  // once.
  void SetBackups(std::vector<NodeId> backups, uint64_t epoch, Resync resync);
  bool enabled() const { return !backups_.empty(); }
  // The view epoch as of which every backup holds a complete copy of this
  // server's acknowledged updates: no full copy has been due or in flight
  // since. Behind the current view while a full copy is on its way; a
  // backup promoted meanwhile could lack rows. Thread-safe (heartbeats).
  uint64_t synced_epoch() const { return synced_epoch_.load(); }
  // Messages unacknowledged this long are sent again (0: never); from the
  // cluster view.
  void set_request_timeout(std::chrono::milliseconds timeout) { request_timeout_ = timeout; }
  const std::vector<NodeId>& backups() const { return backups_; }

  // What a push changed (keys: changed or removed rows).
  void NoteRows(TableId table, std::span<const Key> keys);
  void NoteDense(TableId table);
  void NoteOp(uint64_t op_id);
  // The tables were captured for a version, after every change noted so
  // far: the next batch marks the capture point.
  void NoteCapture();
  // Runs `reply` (with OK) once every change noted so far reached every
  // backup: at once when replication is off, else after a batch is
  // acknowledged.
  using Reply = std::function<void(const Status&)>;
  void AfterReplicated(Reply reply);
  // Runs every reply still waiting with `status` (this server lost the
  // slots of some of them: the clients resend under the new view, with the
  // same operation ids) and abandons the batch in flight (whose changes then
  // go in a full copy).
  void FailWaiting(const Status& status);

 private:
  // One message of the batch in flight, to one backup.
  struct Delivery {
    size_t backup = 0;   // index in backups_
    size_t message = 0;  // index in InFlight::messages
    int attempts = 0;    // sends that timed out
  };
  struct InFlight {
    uint64_t id = 0;
    uint64_t epoch = 0;   // the view it was built under
    int outstanding = 0;  // messages not acknowledged yet
    bool failed = false;
    bool full = false;  // a full copy
    std::vector<protocol::ReplicateBatch> messages;
    std::map<uint64_t, Delivery> requests;  // by request id, unacknowledged
    std::vector<Reply> replies;
  };

  // Builds and sends the next batch unless one is in flight (a failed one
  // is replaced by a full copy).
  void MaybeSend();
  std::vector<protocol::ReplicateBatch> BuildIncremental();
  std::vector<protocol::ReplicateBatch> BuildFull();
  // Sends (again) one message of the batch in flight.
  void Deliver(Delivery delivery);
  void OnAck(uint64_t batch_id, uint64_t request_id, const Status& status);
  void Abandon();
  // Advances synced_epoch_ unless a full copy is due or in flight.
  void UpdateSynced();

  protocol::Messenger* const messenger_;
  const TableSet* const tables_;
  const AppliedOps* const ops_;
  Counter& batches_;
  Counter& bytes_;
  Counter& failures_;
  Counter& resent_;
  Histogram& latency_;

  std::vector<NodeId> backups_;
  uint64_t epoch_ = 0;
  bool full_copy_due_ = false;
  bool capture_due_ = false;  // the next incremental batch marks a capture point
  std::map<TableId, absl::flat_hash_set<Key>> changed_rows_;
  absl::flat_hash_set<TableId> changed_dense_;
  std::vector<uint64_t> new_ops_;
  std::vector<Reply> waiting_;  // replies for the next batch
  std::unique_ptr<InFlight> in_flight_;
  uint64_t next_batch_id_ = 1;
  std::chrono::milliseconds request_timeout_{0};
  std::atomic<uint64_t> synced_epoch_{0};
  std::chrono::steady_clock::time_point sent_at_;
};

}  // namespace tessera::server

#endif  // TESSERA_SERVER_REPLICATOR_H_
