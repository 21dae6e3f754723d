#include "server/server_node.h"

#include <chrono>
#include <memory>
#include <utility>

#include "common/logging.h"
#include "server/table_snapshot.h"

namespace tessera::server {

using protocol::DecodedMessage;
using protocol::Header;
using protocol::MessageType;

namespace {
// Keys one sparse request may carry (KvClient slices a batch per server far
// below this); more is a malformed or hostile request.
constexpr size_t kMaxKeysPerRequest = size_t{1} << 22;

double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}
}  // namespace

ServerNode::ServerNode(ServerOptions options, Transport* transport, const Clock* clock,
                       MetricsRegistry* metrics)
    : options_([&] {
        options.member.role = Role::kServer;
        return std::move(options);
      }()),
      clock_(clock),
      metrics_(metrics),
      messenger_({transport, options_.token, metrics, "server"},
                 [this](DecodedMessage msg) { Handle(std::move(msg)); }),
      member_(options_.member, &messenger_),
      replicator_(&messenger_, &tables_, &applied_ops_, metrics),
      pull_(MakeOpMetrics("pull")),
      push_(MakeOpMetrics("push")),
      push_pull_(MakeOpMetrics("push_pull")),
      dense_pull_(MakeOpMetrics("dense_pull")),
      dense_push_(MakeOpMetrics("dense_push")),
      capture_seconds_(metrics->GetHistogram(
          "tessera_server_snapshot_capture_seconds",
          "Time to copy a version's rows into memory (training waits for it).",
          {0.0001, 0.001, 0.005, 0.02, 0.1, 0.5, 2})),
      captured_rows_(metrics->GetCounter("tessera_server_snapshot_rows_total",
                                         "Sparse rows captured into published versions.")),
      bytes_received_(metrics->GetCounter("tessera_server_received_bytes_total",
                                          "Bytes of data-plane requests received.")),
      bytes_sent_(metrics->GetCounter("tessera_server_sent_bytes_total",
                                      "Bytes of data-plane replies sent.")),
      bad_requests_(metrics->GetCounter(
          "tessera_server_bad_requests_total",
          "Verified requests refused as invalid (unknown table, size mismatch, keys not owned).")),
      duplicate_ops_(metrics->GetCounter(
          "tessera_server_duplicate_ops_total",
          "Pushes whose operation id was already applied (retries after a failover, duplicated "
          "messages): acknowledged, not applied again.")),
      promoted_rows_(metrics->GetCounter(
          "tessera_server_promoted_rows_total",
          "Rows taken over from a dead primary's replica when this server was promoted.")),
      replica_rows_(metrics->GetGauge("tessera_server_replica_rows",
                                      "Rows held as backup copies of other servers' shards.")),
      stale_replication_(metrics->GetCounter(
          "tessera_server_replication_stale_total",
          "Replication messages ignored as older than the newest applied from their primary "
          "(late copies of resent messages).")) {}

ServerNode::~ServerNode() { Stop(); }

ServerNode::OpMetrics ServerNode::MakeOpMetrics(const std::string& op) {
  return OpMetrics{
      &metrics_->GetCounter("tessera_server_requests_total", "Data-plane requests handled.",
                            {{"op", op}}),
      &metrics_->GetCounter("tessera_server_keys_total",
                            "Keys (sparse) or floats (dense) pulled or pushed.", {{"op", op}}),
      &metrics_->GetHistogram("tessera_server_request_duration_seconds",
                              "Time to apply a request and encode its reply.", LatencyBuckets(),
                              {{"op", op}})};
}

Status ServerNode::Start(SteadyTime deadline) {
  // member_.Stop() (in Stop()) joins the heartbeat thread before `this` goes.
  member_.SetStatsProvider([this] { return CurrentStats(); });
  TESSERA_RETURN_IF_ERROR(member_.Bind().status());
  messenger_.Start();
  TESSERA_ASSIGN_OR_RETURN(NodeId id, member_.Register(deadline));
  SetLogNodeLabel(id.ToString());
  TESSERA_LOG(kInfo) << "registered as " << id.ToString() << " at " << member_.endpoint();
  return OkStatus();
}

void ServerNode::Stop() {
  member_.Stop();
  messenger_.Stop();
}

void ServerNode::Handle(DecodedMessage msg) {
  switch (msg.type()) {
    case MessageType::kClusterView:
      HandleClusterView(msg);
      return;
    case MessageType::kReplicateRequest:
      HandleReplicate(msg);
      return;
    case MessageType::kReplicaSyncRequest:
      HandleReplicaSync(msg);
      return;
    case MessageType::kConfigureTables:
      HandleConfigure(msg);
      return;
    case MessageType::kShutdownRequest: {
      StatusOr<std::string> reason = msg.AsShutdownRequest();
      member_.OnShutdown(reason.ok() ? *reason : "requested");
      return;
    }
    case MessageType::kSaveRequest: {
      // Runs on the receive thread: requests wait until the tables are saved.
      StatusOr<std::string> dir = msg.AsSaveRequest();
      Status s = dir.status();
      if (s.ok() && !ready_) s = FailedPreconditionError("server: save before table configuration");
      if (s.ok()) s = SaveTables(tables_, rank_, *dir);
      if (!s.ok()) TESSERA_LOG(kError) << "save failed: " << s;
      (void)messenger_.Reply(msg, [](const Header& h) { return protocol::EncodeAck(h); }, s);
      return;
    }
    case MessageType::kSnapshotRequest:
      HandleSnapshot(msg);
      return;
    case MessageType::kSnapshotFlushRequest:
      HandleSnapshotFlush(std::move(msg));
      return;
    case MessageType::kRestoreRequest:
      HandleRestore(msg);
      return;
    case MessageType::kForgetRequest:
      HandleForget(msg);
      return;
    case MessageType::kPullRequest:
    case MessageType::kPushRequest:
    case MessageType::kPushPullRequest:
    case MessageType::kDensePullRequest:
    case MessageType::kDensePushRequest: {
      bytes_received_.Increment(static_cast<double>(msg.frame().size()));
      Status s = (msg.type() == MessageType::kDensePullRequest ||
                  msg.type() == MessageType::kDensePushRequest)
                     ? HandleDense(msg)
                     : HandleSparse(msg);
      if (!s.ok()) {
        bad_requests_.Increment();
        TESSERA_LOG(kDebug) << "refused " << protocol::MessageTypeName(msg.type()) << " from "
                            << msg.header().sender.ToString() << ": " << s;
        (void)messenger_.ReplyError(msg, s);
      }
      return;
    }
    default:
      bad_requests_.Increment();
      (void)messenger_.ReplyError(
          msg, InvalidArgumentError("server: unexpected " +
                                    std::string(protocol::MessageTypeName(msg.type()))));
  }
}

void ServerNode::HandleConfigure(const DecodedMessage& msg) {
  StatusOr<std::vector<TableConfig>> configs = msg.AsConfigureTables();
  Status s = configs.status();
  if (s.ok() && shard_map_.num_slots() == 0) {
    s = FailedPreconditionError("server: table configuration before the cluster view");
  }
  if (s.ok()) s = tables_.Apply(*configs, shard_map_, rank_);
  if (s.ok()) {
    for (const ServerTable* t : tables_.All()) UpdateTableGauges(*t);
    replicator_.SetBackups(CurrentBackups(), view_epoch_, Replicator::Resync::kNever);
    ready_ = true;
    TESSERA_LOG(kInfo) << "configured " << tables_.size() << " tables";
  } else {
    TESSERA_LOG(kError) << "table configuration refused: " << s;
  }
  (void)messenger_.Reply(msg, [](const Header& h) { return protocol::EncodeAck(h); }, s);
}

void ServerNode::HandleSnapshot(const DecodedMessage& msg) {
  // On the receive thread: requests wait while rows are copied (training is
  // paused at a step boundary by the scheduler meanwhile); writing is left
  // to the writer thread.
  const auto start = std::chrono::steady_clock::now();
  StatusOr<protocol::SnapshotInfo> info = msg.AsSnapshotRequest();
  Status s = info.status();
  if (s.ok() && !ready_) s = FailedPreconditionError("server: snapshot before table configuration");
  if (s.ok()) {
    StatusOr<CapturedVersion> captured = CaptureVersion(tables_, rank_, *info);
    s = captured.status();
    if (s.ok()) {
      // Backups drop the tombstones replicated so far (they are in this
      // version) and keep later ones (server/replicator.h).
      replicator_.NoteCapture();
      captured_rows_.Increment(static_cast<double>(captured->sparse_rows()));
      snapshot_writer_.Enqueue(std::move(captured).value());
    }
  }
  capture_seconds_.Observe(SecondsSince(start));
  if (!s.ok()) TESSERA_LOG(kError) << "snapshot refused: " << s;
  (void)messenger_.Reply(msg, [](const Header& h) { return protocol::EncodeAck(h); }, s);
}

void ServerNode::HandleSnapshotFlush(DecodedMessage msg) {
  StatusOr<uint64_t> version = msg.AsSnapshotFlushRequest();
  if (!version.ok()) {
    (void)messenger_.ReplyError(msg, version.status());
    return;
  }
  auto request = std::make_shared<DecodedMessage>(std::move(msg));
  snapshot_writer_.WhenWritten(*version, [this, request](Status s) {
    (void)messenger_.Reply(*request, [](const Header& h) { return protocol::EncodeAck(h); }, s);
  });
}

void ServerNode::HandleRestore(const DecodedMessage& msg) {
  const auto start = std::chrono::steady_clock::now();
  StatusOr<std::vector<protocol::RestoreTable>> files = msg.AsRestoreRequest();
  Status s = files.status();
  if (s.ok() && !ready_) s = FailedPreconditionError("server: restore before table configuration");
  if (s.ok()) s = RestoreTables(tables_, *files, shard_map_, rank_);
  if (s.ok()) {
    size_t rows = 0;
    for (const ServerTable* t : tables_.All()) {
      UpdateTableGauges(*t);
      if (t->sparse) rows += t->sparse->num_rows();
    }
    TESSERA_LOG(kInfo) << "restored " << rows << " rows in " << SecondsSince(start) << " s";
    replicator_.SetBackups(CurrentBackups(), view_epoch_, Replicator::Resync::kAlways);
  } else {
    TESSERA_LOG(kError) << "restore failed: " << s;
  }
  (void)messenger_.Reply(msg, [](const Header& h) { return protocol::EncodeAck(h); }, s);
}

StatusOr<const ServerTable*> ServerNode::FindTable(TableId id, TableKind kind) const {
  const ServerTable* table = tables_.Find(id);
  if (table == nullptr) return NotFoundError("server: unknown table " + std::to_string(id));
  if (table->config.kind != kind) {
    return InvalidArgumentError("server: table '" + table->config.name + "' is " +
                                (table->config.kind == TableKind::kDense ? "dense" : "sparse"));
  }
  return table;
}

Status ServerNode::CheckDenseOwned(const ServerTable& table, uint64_t begin,
                                   uint64_t count) const {
  if (begin > table.config.size || count > table.config.size - begin) {
    return InvalidArgumentError("server: range [" + std::to_string(begin) + ", +" +
                                std::to_string(count) + ") outside dense table '" +
                                table.config.name + "' of " + std::to_string(table.config.size));
  }
  if (table.dense != nullptr) {
    for (const DenseRange& r : table.dense->ranges()) {
      if (begin >= r.begin && begin + count <= r.end) return OkStatus();
    }
  }
  // Inside the table but not in one owned range: the client's shard map is
  // older than this server's (slots moved); it resends under a newer view.
  return FailedPreconditionError("server: dense table '" + table.config.name + "' range [" +
                                 std::to_string(begin) + ", " + std::to_string(begin + count) +
                                 ") is not owned here (stale shard map?)");
}

Status ServerNode::CheckOwnership(std::span<const Key> keys) const {
  for (Key key : keys) {
    if (shard_map_.OwnerOfKey(key) != rank_) {
      return FailedPreconditionError("server: key " + std::to_string(key) + " belongs to server " +
                                     std::to_string(shard_map_.OwnerOfKey(key)) +
                                     " (stale shard map?)");
    }
  }
  return OkStatus();
}

Status ServerNode::HandleSparse(const DecodedMessage& msg) {
  const auto start = std::chrono::steady_clock::now();
  const bool is_pull = msg.type() == MessageType::kPullRequest;
  protocol::PushView req;
  if (is_pull) {
    TESSERA_ASSIGN_OR_RETURN(protocol::PullView pull, msg.AsPull());
    req.table = pull.table;
    req.keys = pull.keys;
  } else if (msg.type() == MessageType::kPushRequest) {
    TESSERA_ASSIGN_OR_RETURN(req, msg.AsPush());
  } else {
    TESSERA_ASSIGN_OR_RETURN(req, msg.AsPushPull());
  }
  TESSERA_ASSIGN_OR_RETURN(const ServerTable* table, FindTable(req.table, TableKind::kSparse));
  const size_t dim = table->config.dim;
  if (!is_pull && req.grads.size() != req.keys.size() * dim) {
    return InvalidArgumentError("server: table '" + table->config.name + "' expects " +
                                std::to_string(req.keys.size() * dim) + " gradient floats (" +
                                std::to_string(req.keys.size()) + " keys x dim " +
                                std::to_string(dim) + "), got " + std::to_string(req.grads.size()));
  }
  if (req.keys.size() > kMaxKeysPerRequest) {
    return InvalidArgumentError("server: " + std::to_string(req.keys.size()) +
                                " keys in one request to table '" + table->config.name +
                                "', more than the limit of " + std::to_string(kMaxKeysPerRequest));
  }
  TESSERA_RETURN_IF_ERROR(CheckOwnership(req.keys));
  EmbeddingTable& rows = *table->sparse;
  const int64_t now = clock_->UnixSeconds();
  size_t reply_bytes = 0;
  Status sent;
  OpMetrics* op = is_pull ? &pull_ : msg.type() == MessageType::kPushRequest ? &push_ : &push_pull_;
  // A retried or duplicated push: acknowledged (PushPull: with the current
  // values) once its first application is replicated, never applied again.
  const bool duplicate = !is_pull && req.op_id != 0 && applied_ops_.Contains(req.op_id);
  if (duplicate) duplicate_ops_.Increment();
  // Eviction sweeps run after pushes, at most once per second per table (see
  // EmbeddingTable::MaybeEvict); backups learn the evicted keys. With
  // backups the sweep runs before the reply waits for replication, so its
  // removals are on the backups once the push is acknowledged.
  bool swept = false;
  auto sweep = [&] {
    std::vector<Key> evicted;
    rows.MaybeEvict(now, replicator_.enabled() ? &evicted : nullptr);
    replicator_.NoteRows(table->config.id, evicted);
    swept = true;
  };
  if (is_pull) {
    sent = messenger_.Reply(msg, [&](const Header& h) {
      Frame f = protocol::EncodeValuesReply(h, req.keys.size() * dim,
                                            [&](std::span<float> out) { rows.Pull(req.keys, out); });
      reply_bytes = f.size();
      return f;
    });
  } else if (!replicator_.enabled() && !duplicate) {
    // Without backups the reply goes out at once, PushPull's values written
    // straight into it.
    if (msg.type() == MessageType::kPushRequest) rows.Push(req.keys, req.grads, now);
    applied_ops_.Add(req.op_id);
    sent = messenger_.Reply(msg, [&](const Header& h) {
      Frame f = msg.type() == MessageType::kPushRequest
                    ? protocol::EncodeAck(h)
                    : protocol::EncodeValuesReply(h, req.keys.size() * dim,
                                                  [&](std::span<float> out) {
                                                    rows.PushPull(req.keys, req.grads, out, now);
                                                  });
      reply_bytes = f.size();
      return f;
    });
  } else {
    auto values = std::make_shared<std::vector<float>>();
    if (msg.type() == MessageType::kPushPullRequest) values->resize(req.keys.size() * dim);
    if (duplicate) {
      if (!values->empty()) rows.Pull(req.keys, *values);
    } else {
      if (values->empty()) {
        rows.Push(req.keys, req.grads, now);
      } else {
        rows.PushPull(req.keys, req.grads, *values, now);
      }
      applied_ops_.Add(req.op_id);
      replicator_.NoteOp(req.op_id);
      replicator_.NoteRows(table->config.id, req.keys);
    }
    sweep();
    reply_bytes = values->size() * sizeof(float);
    ReplyWhenReplicated([this, request = msg, values](const Status& status) {
      Status s = !status.ok() ? messenger_.ReplyError(request, status)
                              : messenger_.Reply(request, [&](const Header& h) {
                                  return request.type() == MessageType::kPushRequest
                                             ? protocol::EncodeAck(h)
                                             : protocol::EncodeValuesReply(h, *values);
                                });
      if (!s.ok()) TESSERA_LOG(kWarning) << "reply not sent: " << s;
    });
  }
  if (!is_pull) {
    if (!swept) sweep();
    UpdateTableGauges(*table);
  }
  op->requests->Increment();
  op->keys->Increment(static_cast<double>(req.keys.size()));
  op->latency->Observe(SecondsSince(start));
  bytes_sent_.Increment(static_cast<double>(reply_bytes));
  if (!sent.ok()) TESSERA_LOG(kWarning) << "reply not sent: " << sent;
  return OkStatus();
}

Status ServerNode::HandleDense(const DecodedMessage& msg) {
  const auto start = std::chrono::steady_clock::now();
  size_t reply_bytes = 0;
  Status sent;
  OpMetrics* op;
  uint64_t floats;
  if (msg.type() == MessageType::kDensePullRequest) {
    TESSERA_ASSIGN_OR_RETURN(protocol::DensePullView req, msg.AsDensePull());
    TESSERA_ASSIGN_OR_RETURN(const ServerTable* table, FindTable(req.table, TableKind::kDense));
    TESSERA_RETURN_IF_ERROR(CheckDenseOwned(*table, req.begin, req.count));
    std::vector<float> values(req.count);
    TESSERA_RETURN_IF_ERROR(table->dense->Pull(req.begin, req.begin + req.count, values));
    sent = messenger_.Reply(msg, [&](const Header& h) {
      Frame f = protocol::EncodeValuesReply(h, values);
      reply_bytes = f.size();
      return f;
    });
    op = &dense_pull_;
    floats = req.count;
  } else {
    TESSERA_ASSIGN_OR_RETURN(protocol::DensePushView req, msg.AsDensePush());
    TESSERA_ASSIGN_OR_RETURN(const ServerTable* table, FindTable(req.table, TableKind::kDense));
    TESSERA_RETURN_IF_ERROR(CheckDenseOwned(*table, req.begin, req.grads.size()));
    if (req.op_id != 0 && applied_ops_.Contains(req.op_id)) {
      duplicate_ops_.Increment();
    } else {
      TESSERA_RETURN_IF_ERROR(table->dense->Push(req.begin, req.grads));
      applied_ops_.Add(req.op_id);
      replicator_.NoteOp(req.op_id);
      replicator_.NoteDense(table->config.id);
    }
    ReplyWhenReplicated([this, request = msg](const Status& status) {
      Status s = messenger_.Reply(request, [](const Header& h) { return protocol::EncodeAck(h); },
                                  status);
      if (!s.ok()) TESSERA_LOG(kWarning) << "reply not sent: " << s;
    });
    op = &dense_push_;
    floats = req.grads.size();
  }
  op->requests->Increment();
  op->keys->Increment(static_cast<double>(floats));
  op->latency->Observe(SecondsSince(start));
  bytes_sent_.Increment(static_cast<double>(reply_bytes));
  if (!sent.ok()) TESSERA_LOG(kWarning) << "reply not sent: " << sent;
  return OkStatus();
}

void ServerNode::UpdateTableGauges(const ServerTable& table) {
  auto it = table_gauges_.find(table.config.id);
  if (it == table_gauges_.end()) {
    // Looked up once per table: registry lookups take a lock and build labels.
    MetricLabels labels{{"table", table.config.name}};
    MetricLabels ttl = labels, max_rows = labels;
    ttl["reason"] = "ttl";
    max_rows["reason"] = "max_rows";
    const std::string evicted_help = "Rows removed by eviction, per table and reason.";
    TableGauges g{
        &metrics_->GetGauge("tessera_server_table_rows", "Rows held per table.", labels),
        &metrics_->GetGauge("tessera_server_table_bytes",
                            "Memory held per table (rows, state, index and sketch).", labels),
        &metrics_->GetGauge("tessera_server_admission_sketch_bytes",
                            "Memory of the admission count-min sketches per table.", labels),
        &metrics_->GetCounter("tessera_server_rows_admitted_total",
                              "Rows created (admitted) per table.", labels),
        &metrics_->GetCounter("tessera_server_keys_rejected_total",
                              "Pushed keys dropped before admission, per table.", labels),
        &metrics_->GetCounter("tessera_server_rows_evicted_total", evicted_help, ttl),
        &metrics_->GetCounter("tessera_server_rows_evicted_total", evicted_help, max_rows),
        &metrics_->GetCounter("tessera_server_pulled_keys_total",
                              "Keys read by pulls, per table (miss ratio: misses / this).", labels),
        &metrics_->GetCounter("tessera_server_pull_misses_total",
                              "Pulled keys that had no row (read their initial value), per table.",
                              labels),
        {}};
    it = table_gauges_.emplace(table.config.id, g).first;
  }
  if (table.sparse) {
    TableGauges& g = it->second;
    const EmbeddingTable::Stats stats = table.sparse->stats();
    // The counters mirror the table's totals: add what is new since last time.
    auto advance = [](Counter* c, uint64_t now, uint64_t& seen) {
      if (now > seen) c->Increment(static_cast<double>(now - seen));
      seen = now;
    };
    advance(g.admitted, stats.rows_admitted, g.seen.rows_admitted);
    advance(g.rejected, stats.keys_rejected, g.seen.keys_rejected);
    advance(g.evicted_ttl, stats.evicted_ttl, g.seen.evicted_ttl);
    advance(g.evicted_max_rows, stats.evicted_max_rows, g.seen.evicted_max_rows);
    advance(g.pulled, stats.keys_pulled, g.seen.keys_pulled);
    advance(g.pull_misses, stats.pull_misses, g.seen.pull_misses);
    g.sketch_bytes->Set(static_cast<double>(table.sparse->sketch_bytes()));
    it->second.rows->Set(static_cast<double>(table.sparse->num_rows()));
    it->second.bytes->Set(static_cast<double>(table.sparse->memory_bytes()));
  } else {
    it->second.rows->Set(0);
    it->second.bytes->Set(table.dense ? static_cast<double>(table.dense->memory_bytes()) : 0.0);
  }
}

protocol::NodeStats ServerNode::CurrentStats() const {
  protocol::NodeStats stats;
  stats.has_server_stats = true;
  stats.replica_sync_epoch = replicator_.synced_epoch();
  // Sparse tables only: they are thread-safe, while dense shards may be
  // resharded on the receive thread (and are small next to the rows).
  for (const ServerTable* t : tables_.All()) {
    if (!t->sparse) continue;
    stats.rows += t->sparse->num_rows();
    stats.bytes += t->sparse->memory_bytes();
  }
  double keys = 0;
  for (const OpMetrics* op : {&pull_, &push_, &push_pull_, &dense_pull_, &dense_push_}) {
    keys += op->keys->Value();
  }
  stats.keys_total = static_cast<uint64_t>(keys);
  return stats;
}

}  // namespace tessera::server
