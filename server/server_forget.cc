// ServerNode's part of `tessera forget` (privacy): removing the rows of given
// keys on request, confirmed with the number removed. A removed row becomes a
// tombstone of the next published delta (EmbeddingTable::Erase with change
// tracking), so later versions do not hold it either.
#include <string>
#include <vector>

#include "common/logging.h"
#include "server/server_node.h"

namespace tessera::server {
namespace {

// The same bound as pushes and pulls (server_node.cc); `tessera forget`
// sends at most this many keys per request.
constexpr size_t kMaxForgetKeys = size_t{1} << 22;

}  // namespace

using protocol::DecodedMessage;
using protocol::Header;

size_t ServerNode::EraseKeys(TableId table, std::span<const Key> keys) {
  const ServerTable* t = tables_.Find(table);
  if (t == nullptr || t->sparse == nullptr) return 0;
  std::vector<Key> removed;
  for (Key key : keys) {
    if (t->sparse->Erase(key)) removed.push_back(key);
  }
  size_t erased = removed.size();
  // Its backups learn the removals in the replication stream, in order with
  // its capture points: a backup promoted before this server's next version
  // publishes the tombstones (server/replica_store.h).
  replicator_.NoteRows(table, removed);
  // The backup copies this server holds of other servers' shards: a
  // promotion must not bring a forgotten row back.
  erased += replicas_.Erase(table, keys);
  return erased;
}

void ServerNode::HandleForget(const DecodedMessage& msg) {
  StatusOr<protocol::ForgetView> request = msg.AsForgetRequest();
  protocol::ForgetResult result;
  result.server = rank_;
  Status s = request.status();
  if (s.ok() && !ready_) s = FailedPreconditionError("server: forget before table configuration");
  StatusOr<const ServerTable*> table =
      s.ok() ? FindTable(request->table, TableKind::kSparse) : StatusOr<const ServerTable*>(s);
  s = table.status();
  if (s.ok() && request->keys.size() > kMaxForgetKeys) {
    s = InvalidArgumentError("server: " + std::to_string(request->keys.size()) +
                             " keys in one forget request, more than the limit of " +
                             std::to_string(kMaxForgetKeys));
  }
  protocol::ForgetReplyInfo reply;
  if (s.ok()) {
    reply.requested = request->keys.size();
    for (Key key : request->keys) result.owned += shard_map_.OwnerOfKey(key) == rank_ ? 1 : 0;
    result.erased = EraseKeys(request->table, request->keys);
    UpdateTableGauges(**table);
    metrics_
        ->GetCounter("tessera_server_forgotten_rows_total",
                     "Rows erased by `tessera forget` requests.")
        .Increment(static_cast<double>(result.erased));
    TESSERA_LOG(kInfo) << "forget: erased " << result.erased << " row(s) of table '"
                       << (*table)->config.name << "' (" << result.owned << " of the "
                       << request->keys.size() << " keys are in this server's shards)";
  } else {
    bad_requests_.Increment();
    TESSERA_LOG(kWarning) << "refused forget request from " << msg.header().sender.ToString()
                          << ": " << s;
  }
  result.status = s;
  reply.results.push_back(result);
  (void)messenger_.Reply(
      msg, [&](const Header& h) { return protocol::EncodeForgetReply(h, reply); }, s);
}

}  // namespace tessera::server
