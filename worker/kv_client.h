// The workers' view of the parameter servers: sliced, parallel Pull / Push /
// PushPull of sparse rows and dense ranges, with tickets and deadlines
// (ps-lite's KVWorker, plus Status and deadlines, minus the singleton).
//
// Keys are deduplicated per request: a pull fetches each unique key once and
// copies its row to every position; a push sums the gradients of duplicate
// keys and sends each unique key once. Keys are split by the shard map and
// sent to every owning server in parallel; results come back in the caller's
// key order.
//
// Failover: UpdateView takes the cluster view sent after a server died.
// Parts of operations in flight that went to a dead server (or failed
// because it was unreachable or no longer owned the keys) are sent again,
// split by the new shard map. Every push carries an operation id, the same
// in each part and retry, so a server that already applied it (the promoted
// backup got it from the dead primary) acknowledges without applying it
// twice. A part with no reply within the view's request timeout (a lost
// request or reply) is sent to the same server again, with backoff and the
// same operation id. An operation whose server stays unreachable without a
// new view fails at its Wait deadline.
//
// Thread-safe. Completion work runs on the Messenger's receive thread.
//
// Example:
//   KvClient kv(&messenger, view, &metrics);
//   std::vector<float> rows(keys.size() * dim);
//   TESSERA_ASSIGN_OR_RETURN(KvClient::Ticket t, kv.Pull(table, keys, rows));
//   TESSERA_RETURN_IF_ERROR(kv.Wait(t, DeadlineIn(5s)));
#ifndef TESSERA_WORKER_KV_CLIENT_H_
#define TESSERA_WORKER_KV_CLIENT_H_

#include <memory>
#include <span>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "common/deadline.h"
#include "common/metrics.h"
#include "common/mutex.h"
#include "protocols/codec.h"
#include "protocols/messenger.h"

namespace tessera::worker {

class KvClient {
 public:
  using Ticket = uint64_t;

  // `messenger` and `metrics` are borrowed and must outlive this client.
  KvClient(protocol::Messenger* messenger, protocol::ClusterView view, MetricsRegistry* metrics);
  ~KvClient();

  // Starts pulling the rows of `keys` into `out` (dim floats per key).
  // REQUIRES: keys and out stay alive and untouched until Wait() returns.
  StatusOr<Ticket> Pull(TableId table, std::span<const Key> keys, std::span<float> out);
  // Starts pushing `grads` (dim floats per key). Acknowledged once applied.
  // REQUIRES: keys and grads stay alive until Wait() returns.
  StatusOr<Ticket> Push(TableId table, std::span<const Key> keys, std::span<const float> grads);
  // Push, then receive the updated rows into `out`.
  StatusOr<Ticket> PushPull(TableId table, std::span<const Key> keys,
                            std::span<const float> grads, std::span<float> out);
  // The whole dense table (config.size floats) into `out`.
  StatusOr<Ticket> DensePull(TableId table, std::span<float> out);
  // Gradients for the whole dense table.
  StatusOr<Ticket> DensePush(TableId table, std::span<const float> grads);

  // Operations started and not yet waited for are limited: past it, the
  // calls above return ResourceExhausted (a client that never waits cannot
  // grow without bound or flood the servers).
  static constexpr size_t kMaxInFlight = 4096;
  // A part unanswered within the view's request timeout is sent again to the
  // same server, the timeout doubling each time up to 2^this times.
  static constexpr int kMaxBackoffDoublings = 3;

  // Waits for a ticket. Returns the first error of any server's reply,
  // DeadlineExceeded (the operation is abandoned: no buffer is touched after
  // Wait returns), or NotFound for an unknown or already waited ticket.
  Status Wait(Ticket ticket, SteadyTime deadline);

  // A newer cluster view (ignored unless its epoch is higher): later
  // operations use it, and parts in flight to servers it lists as dead, or
  // waiting for a view after failing, are sent again.
  void UpdateView(protocol::ClusterView view);
  // Ends every operation in flight with `status` (the cluster is shutting
  // down: its servers will not answer); Wait returns it at once. Later
  // operations are unaffected.
  void FailAll(const Status& status);
  protocol::ClusterView view() const;
  // The configuration of `table`, or nullptr.
  const TableConfig* FindTable(TableId table) const;
  const TableConfig* FindTable(const std::string& name) const;

 private:
  struct Op;
  struct Part;
  struct OpMetrics {
    Counter* requests;
    Counter* keys;
    Histogram* latency;
  };
  enum class Kind { kPull, kPush, kPushPull };

  StatusOr<Ticket> Sparse(Kind kind, TableId table, std::span<const Key> keys,
                          std::span<const float> grads, std::span<float> out);
  StatusOr<Ticket> Dense(bool pull, TableId table, std::span<const float> grads,
                         std::span<float> out);
  Ticket Register(std::shared_ptr<Op> op);
  Status CheckInFlight() const;
  // Sends parts `parts` of `op` (planned, not sent yet).
  void SendParts(const std::shared_ptr<Op>& op, const std::vector<size_t>& parts);
  void OnReply(const std::shared_ptr<Op>& op, size_t part, StatusOr<protocol::DecodedMessage> reply);
  // No reply within the request timeout: resends part `part`.
  void OnTimeout(const std::shared_ptr<Op>& op, size_t part);
  // Records part `p`'s result (s: its status).
  void Complete(const std::shared_ptr<Op>& op, size_t p, Status s,
                const StatusOr<protocol::DecodedMessage>& reply);
  // Resends the parts of `op` split under an older view than the current
  // one that went to a now dead server or wait for a view.
  void RetryWithNewerView(const std::shared_ptr<Op>& op);
  uint64_t NextOpId();
  OpMetrics MakeOpMetrics(const std::string& op);

  protocol::Messenger* const messenger_;
  MetricsRegistry* const metrics_;
  OpMetrics pull_, push_, push_pull_, dense_pull_, dense_push_;
  Counter& retried_parts_;
  Counter& resent_parts_;
  const std::vector<TableConfig> tables_;  // the same in every view
  const uint64_t op_id_base_;  // random per client: ids of two clients never meet

  mutable Mutex mu_;
  // protected by mu_
  protocol::ClusterView view_ TESSERA_GUARDED_BY(mu_);
  uint64_t next_op_ TESSERA_GUARDED_BY(mu_) = 0;
  Ticket next_ticket_ TESSERA_GUARDED_BY(mu_) = 1;
  absl::flat_hash_map<Ticket, std::shared_ptr<Op>> ops_ TESSERA_GUARDED_BY(mu_);
};

}  // namespace tessera::worker

#endif  // TESSERA_WORKER_KV_CLIENT_H_
