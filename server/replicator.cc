#include "server/replicator.h"

#include <algorithm>
#include <utility>

#include "common/logging.h"

namespace tessera::server {

using protocol::DecodedMessage;
using protocol::Header;
using protocol::ReplicateBatch;

Replicator::Replicator(protocol::Messenger* messenger, const TableSet* tables,
                       const AppliedOps* ops, MetricsRegistry* metrics)
    : messenger_(messenger),
      tables_(tables),
      ops_(ops),
      batches_(metrics->GetCounter("tessera_server_replication_batches_total",
                                   "Replication batches acknowledged by every backup.")),
      bytes_(metrics->GetCounter("tessera_server_replication_sent_bytes_total",
                                 "Bytes of replication messages sent to backups.")),
      failures_(metrics->GetCounter(
          "tessera_server_replication_failures_total",
          "Replication messages a backup refused or that could not be sent (the batch waits "
          "for the next cluster view).")),
      resent_(metrics->GetCounter(
          "tessera_server_replication_resent_total",
          "Replication messages sent again after no acknowledgement came within the request "
          "timeout (lost or late messages).")),
      latency_(metrics->GetHistogram(
          "tessera_server_replication_seconds",
          "From sending a replication batch to the last backup's acknowledgement.",
          LatencyBuckets())) {}

void Replicator::SetBackups(std::vector<NodeId> backups, uint64_t epoch, Resync resync) {
  epoch_ = epoch;
  const bool changed = backups != backups_;
  backups_ = std::move(backups);
  if (resync == Resync::kNever || (resync == Resync::kIfChanged && !changed)) {
    UpdateSynced();
    return;
  }
  Abandon();
  changed_rows_.clear();
  changed_dense_.clear();
  new_ops_.clear();
  if (backups_.empty()) {
    full_copy_due_ = false;
    std::vector<Reply> replies = std::move(waiting_);
    waiting_.clear();
    for (auto& reply : replies) reply(OkStatus());
    UpdateSynced();
    return;
  }
  full_copy_due_ = true;
  MaybeSend();
}

void Replicator::UpdateSynced() {
  if (full_copy_due_ || (in_flight_ != nullptr && in_flight_->full)) return;
  synced_epoch_ = epoch_;
}

void Replicator::NoteRows(TableId table, std::span<const Key> keys) {
  if (!enabled() || full_copy_due_ || keys.empty()) return;
  changed_rows_[table].insert(keys.begin(), keys.end());
}

void Replicator::NoteDense(TableId table) {
  if (!enabled() || full_copy_due_) return;
  changed_dense_.insert(table);
}

void Replicator::NoteOp(uint64_t op_id) {
  if (!enabled() || full_copy_due_ || op_id == 0) return;
  new_ops_.push_back(op_id);
}

void Replicator::NoteCapture() {
  // A full copy due reads the tombstones left after the capture anyway.
  if (!enabled() || full_copy_due_) return;
  capture_due_ = true;
}

void Replicator::AfterReplicated(Reply reply) {
  if (!enabled()) {
    reply(OkStatus());
    return;
  }
  waiting_.push_back(std::move(reply));
  MaybeSend();
}

void Replicator::FailWaiting(const Status& status) {
  // The abandoned batch's changes are noted nowhere else any more: the
  // backups get them (and the rest) in a full copy.
  if (in_flight_ != nullptr) full_copy_due_ = true;
  Abandon();
  std::vector<Reply> replies = std::move(waiting_);
  waiting_.clear();
  for (auto& reply : replies) reply(status);
}

void Replicator::Abandon() {
  if (in_flight_ == nullptr) return;
  for (const auto& [id, delivery] : in_flight_->requests) messenger_->Cancel(id);
  // Its replies go first: their changes are in the full copy that follows.
  waiting_.insert(waiting_.begin(), std::make_move_iterator(in_flight_->replies.begin()),
                  std::make_move_iterator(in_flight_->replies.end()));
  in_flight_.reset();
}

std::vector<ReplicateBatch> Replicator::BuildIncremental() {
  ReplicateBatch batch;
  batch.epoch = epoch_;
  batch.captured = capture_due_;
  capture_due_ = false;
  for (auto& [id, keys] : changed_rows_) {
    const ServerTable* table = tables_->Find(id);
    if (table == nullptr || table->sparse == nullptr) continue;
    std::vector<Key> sorted(keys.begin(), keys.end());
    std::sort(sorted.begin(), sorted.end());
    protocol::ReplicaRows rows;
    rows.table = id;
    table->sparse->CopyRows(sorted, rows.records, rows.deleted);
    batch.rows.push_back(std::move(rows));
  }
  for (TableId id : changed_dense_) {
    const ServerTable* table = tables_->Find(id);
    if (table == nullptr || table->dense == nullptr) continue;
    table->dense->ForEachRange([&](const DenseShard::RangeView& r) {
      batch.dense.push_back({id, r.begin, r.end, r.step, {r.values.begin(), r.values.end()},
                             {r.state.begin(), r.state.end()}});
    });
  }
  batch.op_ids = std::move(new_ops_);
  new_ops_.clear();
  changed_rows_.clear();
  changed_dense_.clear();
  std::vector<ReplicateBatch> out;
  out.push_back(std::move(batch));
  return out;
}

std::vector<ReplicateBatch> Replicator::BuildFull() {
  std::vector<ReplicateBatch> out;
  // The copy holds the state after any capture: no capture point is due.
  capture_due_ = false;
  bool tracking = false;
  for (const ServerTable* table : tables_->All()) {
    tracking |= table->sparse != nullptr && table->sparse->tracking();
  }
  auto fresh = [&] {
    ReplicateBatch b;
    b.epoch = epoch_;
    b.reset = true;  // every message: whichever arrives first starts the copy over
    b.captured = tracking;
    return b;
  };
  ReplicateBatch batch = fresh();
  batch.op_ids = ops_->All();
  if (tracking) {
    // The tombstones since the last capture (keys without a row: they never
    // delete a row of the copy, whichever message comes first).
    for (const ServerTable* table : tables_->All()) {
      if (table->sparse == nullptr) continue;
      protocol::ReplicaRows rows;
      rows.table = table->config.id;
      rows.deleted = table->sparse->Tombstones();
      if (!rows.deleted.empty()) batch.rows.push_back(std::move(rows));
    }
  }
  for (const ServerTable* table : tables_->All()) {
    if (table->dense != nullptr) {
      table->dense->ForEachRange([&](const DenseShard::RangeView& r) {
        batch.dense.push_back({table->config.id, r.begin, r.end, r.step,
                               {r.values.begin(), r.values.end()},
                               {r.state.begin(), r.state.end()}});
      });
    }
  }
  for (const ServerTable* table : tables_->All()) {
    if (table->sparse == nullptr) continue;
    protocol::ReplicaRows rows;
    rows.table = table->config.id;
    table->sparse->CopyAllRows(rows.records);
    // Split into messages of about kMaxBatchBytes.
    const size_t record = table->sparse->record_bytes();
    const size_t per_message = std::max<size_t>(1, kMaxBatchBytes / record) * record;
    for (size_t at = 0; at < rows.records.size(); at += per_message) {
      if (batch.payload_bytes() >= kMaxBatchBytes) {
        out.push_back(std::move(batch));
        batch = fresh();
      }
      const size_t end = std::min(rows.records.size(), at + per_message);
      protocol::ReplicaRows part;
      part.table = rows.table;
      part.records.assign(rows.records.begin() + static_cast<ptrdiff_t>(at),
                          rows.records.begin() + static_cast<ptrdiff_t>(end));
      batch.rows.push_back(std::move(part));
    }
  }
  out.push_back(std::move(batch));
  return out;
}

void Replicator::MaybeSend() {
  if (!enabled()) return;
  if (in_flight_ != nullptr && in_flight_->failed && in_flight_->outstanding == 0) {
    // A backup refused the batch (e.g. not configured yet) or it could not
    // be sent: start over with a full copy, now that there is new work.
    Abandon();
    full_copy_due_ = true;
  }
  if (in_flight_ != nullptr) return;
  if (!full_copy_due_ && waiting_.empty() && changed_rows_.empty() && changed_dense_.empty()) {
    return;
  }
  in_flight_ = std::make_unique<InFlight>();
  in_flight_->id = next_batch_id_++;
  in_flight_->epoch = epoch_;
  in_flight_->full = full_copy_due_;
  in_flight_->messages = full_copy_due_ ? BuildFull() : BuildIncremental();
  for (ReplicateBatch& message : in_flight_->messages) message.batch_id = in_flight_->id;
  full_copy_due_ = false;
  in_flight_->replies = std::move(waiting_);
  waiting_.clear();
  sent_at_ = std::chrono::steady_clock::now();
  for (size_t b = 0; b < backups_.size(); ++b) {
    for (size_t m = 0; m < in_flight_->messages.size(); ++m) {
      ++in_flight_->outstanding;
      Deliver(Delivery{b, m, 0});
    }
  }
}

void Replicator::Deliver(Delivery delivery) {
  const NodeId backup = backups_[delivery.backup];
  const ReplicateBatch& message = in_flight_->messages[delivery.message];
  const uint64_t batch_id = in_flight_->id;
  // Backoff: a backup slow rather than unreachable gets ever fewer copies.
  const auto timeout = request_timeout_ * (1 << std::min(delivery.attempts, 3));
  // The id is known only once sent; the callback looks it up by batch.
  auto request_id = std::make_shared<uint64_t>(0);
  StatusOr<uint64_t> id = messenger_->SendRequest(
      backup,
      [&](const Header& h) {
        *request_id = h.request_id;
        Frame f = protocol::EncodeReplicate(h, message);
        bytes_.Increment(static_cast<double>(f.size()));
        return f;
      },
      [this, batch_id, request_id](StatusOr<DecodedMessage> reply) {
        OnAck(batch_id, *request_id, reply.ok() ? reply->header().status : reply.status());
      },
      timeout);
  if (id.ok()) {
    in_flight_->requests.emplace(*id, delivery);
  } else {
    --in_flight_->outstanding;
    in_flight_->failed = true;
    failures_.Increment();
    TESSERA_LOG(kWarning) << "replication to " << backup.ToString() << " not sent: " << id.status();
  }
}

void Replicator::OnAck(uint64_t batch_id, uint64_t request_id, const Status& status) {
  if (in_flight_ == nullptr || in_flight_->id != batch_id) return;  // abandoned
  auto it = in_flight_->requests.find(request_id);
  if (it == in_flight_->requests.end()) return;
  Delivery delivery = it->second;
  in_flight_->requests.erase(it);
  if (absl::IsDeadlineExceeded(status) && !in_flight_->failed) {
    // No ack in time: the message or its ack was lost (or is late). The
    // same message again; the backup applies a late copy at most once.
    ++delivery.attempts;
    resent_.Increment();
    Deliver(delivery);
    return;
  }
  if (!status.ok()) {
    in_flight_->failed = true;
    failures_.Increment();
    TESSERA_LOG(kWarning) << "replication batch refused: " << status;
  }
  if (--in_flight_->outstanding > 0) return;
  if (in_flight_->failed) {
    // Retried at once if this primary has a newer view than the batch (the
    // backup fenced it before this primary learned of the view); else on
    // the next change or view.
    if (in_flight_->epoch < epoch_) MaybeSend();
    return;
  }
  // Every backup has the batch: release its replies.
  latency_.Observe(
      std::chrono::duration<double>(std::chrono::steady_clock::now() - sent_at_).count());
  batches_.Increment();
  std::unique_ptr<InFlight> done = std::move(in_flight_);
  UpdateSynced();
  for (auto& reply : done->replies) reply(OkStatus());
  MaybeSend();
}

}  // namespace tessera::server
