#include "worker/kv_client.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <random>
#include <utility>
#include <vector>

#include "common/logging.h"

namespace tessera::worker {

using protocol::DecodedMessage;
using protocol::Header;

// One request of an operation: the keys (unique indices) or dense range sent
// to one server.
struct KvClient::Part {
  int32_t server = 0;
  // The server of the first split. Retried sub-parts keep it: the id a push
  // part carries is (operation, origin), so the server promoted in the
  // origin's place recognises a part the origin applied, and a server that
  // applied its own part of the operation still applies a part retried
  // from another.
  int32_t origin = 0;
  std::vector<uint32_t> indices;  // sparse
  DenseRange range;               // dense
  uint64_t request_id = 0;
  bool done = false;              // replied, failed for good, or replaced
  bool awaiting_view = false;     // failed retryably: resent on the next view
  uint64_t epoch = 0;             // the view it was split under
  int attempts = 0;               // sends to this server that timed out
};

// One logical operation split into parts (servers or dense ranges).
struct KvClient::Op {
  Mutex mu;
  int remaining TESSERA_GUARDED_BY(mu) = 0;  // parts not done
  Status status TESSERA_GUARDED_BY(mu);
  bool abandoned TESSERA_GUARDED_BY(mu) = false;
  std::vector<Part> parts TESSERA_GUARDED_BY(mu);

  // The plan; written before any request is sent, then read-only.
  Kind kind = Kind::kPull;
  bool dense = false;
  bool returns_values = false;
  TableId table = 0;
  uint64_t dense_size = 0;  // dense: the table's floats
  uint64_t op_id = 0;  // pushes: the same in every part and retry
  size_t dim = 0;
  std::span<float> out;
  std::span<const float> grads;              // unique keys' (sparse) or whole table's (dense)
  std::vector<float> summed;                 // grads of duplicate keys, summed
  std::vector<Key> unique;                   // sparse: unique keys
  std::vector<uint32_t> index_of;            // position -> unique index; empty = identity
  std::vector<float> unique_values;          // sparse pulls with duplicate keys
  OpMetrics* metrics = nullptr;
  std::chrono::steady_clock::time_point start;

  // Replaces part `p` (to a dead or unreachable server) with parts for the
  // owners under `map` (view `epoch`); returns the new parts' indices.
  std::vector<size_t> Resplit(size_t p, const ShardMap& map, uint64_t epoch)
      TESSERA_EXCLUSIVE_LOCKS_REQUIRED(mu);
};

namespace {

uint64_t RandomBase() {
  std::random_device rd;
  const uint64_t r = (uint64_t{rd()} << 32) ^ rd();
  return r & ~uint64_t{0xffffffff};  // the low half counts operations
}

// Errors after which a part waits for a new cluster view instead of failing
// the operation: the server is unreachable, or no longer owns the keys.
bool WaitsForView(const Status& s) {
  return absl::IsUnavailable(s) || absl::IsFailedPrecondition(s);
}

}  // namespace

KvClient::KvClient(protocol::Messenger* messenger, protocol::ClusterView view,
                   MetricsRegistry* metrics)
    : messenger_(messenger),
      metrics_(metrics),
      pull_(MakeOpMetrics("pull")),
      push_(MakeOpMetrics("push")),
      push_pull_(MakeOpMetrics("push_pull")),
      dense_pull_(MakeOpMetrics("dense_pull")),
      dense_push_(MakeOpMetrics("dense_push")),
      retried_parts_(metrics->GetCounter(
          "tessera_worker_kv_retried_parts_total",
          "Parts of KV operations sent again after a failover (new cluster view).")),
      resent_parts_(metrics->GetCounter(
          "tessera_worker_kv_resent_parts_total",
          "Parts of KV operations sent to the same server again after no reply came within "
          "the request timeout (lost or late messages).")),
      tables_(view.tables),
      op_id_base_(RandomBase()),
      view_(std::move(view)) {}

KvClient::~KvClient() {
  std::vector<Ticket> tickets;
  {
    MutexLock lock(&mu_);
    for (const auto& [t, op] : ops_) tickets.push_back(t);
  }
  for (Ticket t : tickets) (void)Wait(t, std::chrono::steady_clock::now());
}

KvClient::OpMetrics KvClient::MakeOpMetrics(const std::string& op) {
  return OpMetrics{
      &metrics_->GetCounter("tessera_worker_kv_requests_total", "KV operations started.",
                            {{"op", op}}),
      &metrics_->GetCounter("tessera_worker_kv_keys_total",
                            "Keys (sparse, before dedup) or floats (dense) moved.", {{"op", op}}),
      &metrics_->GetHistogram("tessera_worker_kv_duration_seconds",
                              "Time from starting a KV operation to its last reply.",
                              LatencyBuckets(), {{"op", op}})};
}

const TableConfig* KvClient::FindTable(TableId table) const {
  for (const TableConfig& t : tables_) {
    if (t.id == table) return &t;
  }
  return nullptr;
}

const TableConfig* KvClient::FindTable(const std::string& name) const {
  for (const TableConfig& t : tables_) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

protocol::ClusterView KvClient::view() const {
  MutexLock lock(&mu_);
  return view_;
}

uint64_t KvClient::NextOpId() {
  MutexLock lock(&mu_);
  return op_id_base_ + (++next_op_ & 0xffffffff);
}

StatusOr<KvClient::Ticket> KvClient::Pull(TableId table, std::span<const Key> keys,
                                          std::span<float> out) {
  return Sparse(Kind::kPull, table, keys, {}, out);
}

StatusOr<KvClient::Ticket> KvClient::Push(TableId table, std::span<const Key> keys,
                                          std::span<const float> grads) {
  return Sparse(Kind::kPush, table, keys, grads, {});
}

StatusOr<KvClient::Ticket> KvClient::PushPull(TableId table, std::span<const Key> keys,
                                              std::span<const float> grads,
                                              std::span<float> out) {
  return Sparse(Kind::kPushPull, table, keys, grads, out);
}

StatusOr<KvClient::Ticket> KvClient::DensePull(TableId table, std::span<float> out) {
  return Dense(true, table, {}, out);
}

StatusOr<KvClient::Ticket> KvClient::DensePush(TableId table, std::span<const float> grads) {
  return Dense(false, table, grads, {});
}

Status KvClient::CheckInFlight() const {
  MutexLock lock(&mu_);
  if (ops_.size() >= kMaxInFlight) {
    return ResourceExhaustedError("kv: " + std::to_string(ops_.size()) +
                                  " operations in flight, the limit: Wait() for some first");
  }
  return OkStatus();
}

KvClient::Ticket KvClient::Register(std::shared_ptr<Op> op) {
  MutexLock lock(&mu_);
  Ticket t = next_ticket_++;
  ops_.emplace(t, std::move(op));
  return t;
}

StatusOr<KvClient::Ticket> KvClient::Sparse(Kind kind, TableId table, std::span<const Key> keys,
                                            std::span<const float> grads, std::span<float> out) {
  const TableConfig* config = FindTable(table);
  if (config == nullptr || config->kind != TableKind::kSparse) {
    return InvalidArgumentError("kv: no sparse table " + std::to_string(table));
  }
  const size_t dim = config->dim;
  const size_t n = keys.size();
  if (kind != Kind::kPush && out.size() != n * dim) {
    return InvalidArgumentError("kv: output holds " + std::to_string(out.size()) +
                                " floats, need " + std::to_string(n * dim));
  }
  if (kind != Kind::kPull && grads.size() != n * dim) {
    return InvalidArgumentError("kv: " + std::to_string(grads.size()) +
                                " gradient floats for " + std::to_string(n) + " keys of dim " +
                                std::to_string(dim));
  }
  TESSERA_RETURN_IF_ERROR(CheckInFlight());
  auto op = std::make_shared<Op>();
  op->kind = kind;
  op->table = table;
  op->returns_values = kind != Kind::kPush;
  op->op_id = kind == Kind::kPull ? 0 : NextOpId();
  op->dim = dim;
  op->out = out;
  op->grads = grads;
  op->metrics = kind == Kind::kPull ? &pull_ : kind == Kind::kPush ? &push_ : &push_pull_;
  op->start = std::chrono::steady_clock::now();

  // Deduplicate.
  absl::flat_hash_map<Key, uint32_t> seen;
  seen.reserve(n);
  op->unique.reserve(n);
  op->index_of.resize(n);
  bool duplicates = false;
  for (size_t j = 0; j < n; ++j) {
    auto [it, inserted] = seen.try_emplace(keys[j], static_cast<uint32_t>(op->unique.size()));
    if (inserted) {
      op->unique.push_back(keys[j]);
    } else {
      duplicates = true;
    }
    op->index_of[j] = it->second;
  }
  if (!duplicates) {
    op->index_of.clear();
  } else {
    if (op->returns_values) op->unique_values.resize(op->unique.size() * dim);
    if (kind != Kind::kPull) {
      op->summed.assign(op->unique.size() * dim, 0.0f);
      for (size_t j = 0; j < n; ++j) {
        float* dst = &op->summed[op->index_of[j] * dim];
        const float* src = &grads[j * dim];
        for (size_t d = 0; d < dim; ++d) dst[d] += src[d];
      }
      op->grads = op->summed;
    }
  }
  // Split by owner.
  const protocol::ClusterView current = view();
  const ShardMap& map = current.shard_map;
  std::vector<std::vector<uint32_t>> by_server(map.num_servers());
  for (uint32_t u = 0; u < op->unique.size(); ++u) {
    by_server[map.OwnerOfKey(op->unique[u])].push_back(u);
  }
  std::vector<size_t> to_send;
  {
    MutexLock lock(&op->mu);
    for (int32_t s = 0; s < map.num_servers(); ++s) {
      if (by_server[s].empty()) continue;
      Part part;
      part.server = s;
      part.origin = s;
      part.epoch = current.epoch;
      part.indices = std::move(by_server[s]);
      to_send.push_back(op->parts.size());
      op->parts.push_back(std::move(part));
    }
    op->remaining = static_cast<int>(op->parts.size());
  }
  op->metrics->requests->Increment();
  op->metrics->keys->Increment(static_cast<double>(n));
  Ticket ticket = Register(op);
  SendParts(op, to_send);
  // A view that arrived after the split and before Register (UpdateView did
  // not see this op): resend what went to servers it lists as dead.
  RetryWithNewerView(op);
  return ticket;
}

StatusOr<KvClient::Ticket> KvClient::Dense(bool pull, TableId table, std::span<const float> grads,
                                           std::span<float> out) {
  const TableConfig* config = FindTable(table);
  if (config == nullptr || config->kind != TableKind::kDense) {
    return InvalidArgumentError("kv: no dense table " + std::to_string(table));
  }
  std::span<const float> data = pull ? std::span<const float>(out) : grads;
  if (data.size() != config->size) {
    return InvalidArgumentError("kv: dense table '" + config->name + "' has " +
                                std::to_string(config->size) + " floats, got " +
                                std::to_string(data.size()));
  }
  TESSERA_RETURN_IF_ERROR(CheckInFlight());
  auto op = std::make_shared<Op>();
  op->kind = pull ? Kind::kPull : Kind::kPush;
  op->dense = true;
  op->table = table;
  op->dense_size = config->size;
  op->returns_values = pull;
  op->op_id = pull ? 0 : NextOpId();
  op->out = out;
  op->grads = grads;
  op->metrics = pull ? &dense_pull_ : &dense_push_;
  op->start = std::chrono::steady_clock::now();
  std::vector<size_t> to_send;
  const protocol::ClusterView current = view();
  {
    MutexLock lock(&op->mu);
    for (const DenseRange& r : current.shard_map.DenseRanges(config->size)) {
      Part part;
      part.server = r.server;
      part.origin = r.server;
      part.epoch = current.epoch;
      part.range = r;
      to_send.push_back(op->parts.size());
      op->parts.push_back(std::move(part));
    }
    op->remaining = static_cast<int>(op->parts.size());
  }
  op->metrics->requests->Increment();
  op->metrics->keys->Increment(static_cast<double>(config->size));
  Ticket ticket = Register(op);
  SendParts(op, to_send);
  // A view that arrived after the split and before Register (UpdateView did
  // not see this op): resend what went to servers it lists as dead.
  RetryWithNewerView(op);
  return ticket;
}

void KvClient::SendParts(const std::shared_ptr<Op>& op, const std::vector<size_t>& indices) {
  const size_t dim = op->dim;
  std::chrono::milliseconds base_timeout;
  {
    MutexLock lock(&mu_);
    base_timeout = std::chrono::milliseconds(view_.request_timeout_ms);
  }
  for (size_t p : indices) {
    Part part;
    {
      MutexLock lock(&op->mu);
      part = op->parts[p];
    }
    // Backoff: a server slow rather than unreachable gets ever fewer copies.
    const auto timeout = base_timeout * (1 << std::min(part.attempts, kMaxBackoffDoublings));
    if (op->dense ? part.range.begin >= part.range.end : part.indices.empty()) continue;
    auto fill = [&](std::span<Key> k, std::span<float> g) {
      for (size_t i = 0; i < part.indices.size(); ++i) {
        k[i] = op->unique[part.indices[i]];
        if (!g.empty()) {
          std::memcpy(&g[i * dim], &op->grads[part.indices[i] * dim], dim * sizeof(float));
        }
      }
    };
    // 0 (pulls) stays 0: never deduplicated.
    const uint64_t part_id =
        op->op_id == 0
            ? 0
            : std::max<uint64_t>(1, op->op_id ^ (static_cast<uint64_t>(part.origin + 1) *
                                                 0x9e3779b97f4a7c15ULL));
    auto encode = [&](const Header& h) {
      const DenseRange& r = part.range;
      if (op->dense) {
        return op->kind == Kind::kPull
                   ? protocol::EncodeDensePull(h, op->table, r.begin, r.end - r.begin)
                   : protocol::EncodeDensePush(h, op->table, r.begin,
                                               op->grads.subspan(r.begin, r.end - r.begin),
                                               part_id);
      }
      const size_t n = part.indices.size();
      switch (op->kind) {
        case Kind::kPull:
          return protocol::EncodePull(h, op->table, n, [&](std::span<Key> k) { fill(k, {}); });
        case Kind::kPush:
          return protocol::EncodePush(h, op->table, n, n * dim, fill, part_id);
        case Kind::kPushPull:
          break;
      }
      return protocol::EncodePushPull(h, op->table, n, n * dim, fill, part_id);
    };
    StatusOr<uint64_t> id = messenger_->SendRequest(
        NodeId{Role::kServer, part.server}, encode,
        [this, op, p](StatusOr<DecodedMessage> reply) { OnReply(op, p, std::move(reply)); },
        timeout);
    bool retry_now = false;
    {
      MutexLock lock(&op->mu);
      if (id.ok()) {
        op->parts[p].request_id = *id;
      } else if (!op->parts[p].done) {
        if (WaitsForView(id.status())) {
          op->parts[p].awaiting_view = true;
          retry_now = true;
        } else {
          op->parts[p].done = true;
          if (op->status.ok()) op->status = id.status();
          --op->remaining;
        }
      }
    }
    if (retry_now) RetryWithNewerView(op);
  }
}

void KvClient::RetryWithNewerView(const std::shared_ptr<Op>& op) {
  ShardMap map;
  uint64_t epoch;
  std::vector<bool> live;
  {
    MutexLock lock(&mu_);
    map = view_.shard_map;
    epoch = view_.epoch;
    live = view_.LiveServers();
  }
  std::vector<size_t> resend;
  std::vector<uint64_t> cancel;
  {
    MutexLock lock(&op->mu);
    if (op->abandoned) return;
    const size_t n = op->parts.size();
    for (size_t p = 0; p < n; ++p) {
      const Part& part = op->parts[p];
      if (part.done || part.epoch >= epoch) continue;
      const bool dead = part.server >= static_cast<int32_t>(live.size()) || !live[part.server];
      if (!dead && !part.awaiting_view) continue;
      if (part.request_id != 0) cancel.push_back(part.request_id);
      for (size_t added : op->Resplit(p, map, epoch)) resend.push_back(added);
    }
  }
  for (uint64_t id : cancel) messenger_->Cancel(id);
  if (resend.empty()) return;
  retried_parts_.Increment(static_cast<double>(resend.size()));
  SendParts(op, resend);
}

void KvClient::OnReply(const std::shared_ptr<Op>& op, size_t p, StatusOr<DecodedMessage> reply) {
  if (!reply.ok() && absl::IsDeadlineExceeded(reply.status())) {
    OnTimeout(op, p);
    return;
  }
  const Status s = reply.ok() ? reply->header().status : reply.status();
  if (!s.ok() && WaitsForView(s)) {
    // The server cannot take it (now): the part waits for a new view, or
    // goes at once if one arrived since it was sent.
    {
      MutexLock lock(&op->mu);
      if (op->abandoned || op->parts[p].done) return;
      op->parts[p].awaiting_view = true;
      TESSERA_LOG(kDebug) << "kv: part to server " << op->parts[p].server
                          << " waits for a new view: " << s;
    }
    RetryWithNewerView(op);
    return;
  }
  Complete(op, p, s, reply);
}

void KvClient::OnTimeout(const std::shared_ptr<Op>& op, size_t p) {
  // The request or its reply was lost (or is late): a newer view may send
  // the part elsewhere; else it goes to the same server again. Pushes keep
  // their id, so the server applies them once whichever copy arrives.
  {
    MutexLock lock(&op->mu);
    Part& part = op->parts[p];
    if (op->abandoned || part.done) return;
    part.request_id = 0;
    part.awaiting_view = true;
    ++part.attempts;
  }
  RetryWithNewerView(op);
  {
    MutexLock lock(&op->mu);
    Part& part = op->parts[p];
    if (op->abandoned || part.done) return;  // re-split under a newer view
    part.awaiting_view = false;
  }
  resent_parts_.Increment();
  SendParts(op, {p});
}

void KvClient::Complete(const std::shared_ptr<Op>& op, size_t p, Status s,
                        const StatusOr<DecodedMessage>& reply) {
  MutexLock lock(&op->mu);
  if (op->abandoned || op->parts[p].done) return;
  Part& part = op->parts[p];
  if (s.ok() && op->returns_values) {
    StatusOr<std::span<const float>> values = reply->AsValuesReply();
    if (!values.ok()) {
      s = values.status();
    } else if (op->dense) {
      const DenseRange& r = part.range;
      if (values->size() != r.end - r.begin) {
        s = DataLossError("kv: dense reply has " + std::to_string(values->size()) + " floats, want " +
                          std::to_string(r.end - r.begin));
      } else {
        std::memcpy(&op->out[r.begin], values->data(), values->size() * sizeof(float));
      }
    } else {
      const std::vector<uint32_t>& idx = part.indices;
      const size_t dim = op->dim;
      if (values->size() != idx.size() * dim) {
        s = DataLossError("kv: reply has " + std::to_string(values->size()) + " floats, want " +
                          std::to_string(idx.size() * dim));
      } else {
        float* dst = op->index_of.empty() ? op->out.data() : op->unique_values.data();
        for (size_t i = 0; i < idx.size(); ++i) {
          std::memcpy(dst + idx[i] * dim, values->data() + i * dim, dim * sizeof(float));
        }
      }
    }
  }
  part.done = true;
  if (!s.ok() && op->status.ok()) op->status = s;
  if (--op->remaining > 0) return;
  if (op->status.ok() && op->returns_values && !op->index_of.empty()) {
    const size_t dim = op->dim;
    for (size_t j = 0; j < op->index_of.size(); ++j) {
      std::memcpy(&op->out[j * dim], &op->unique_values[op->index_of[j] * dim], dim * sizeof(float));
    }
  }
  op->metrics->latency->Observe(
      std::chrono::duration<double>(std::chrono::steady_clock::now() - op->start).count());
}

std::vector<size_t> KvClient::Op::Resplit(size_t p, const ShardMap& map, uint64_t epoch) {
  Part old = parts[p];
  parts[p].done = true;
  std::vector<Part> fresh;
  if (dense) {
    for (const DenseRange& r : map.DenseRanges(dense_size)) {
      const uint64_t begin = std::max(r.begin, old.range.begin);
      const uint64_t end = std::min(r.end, old.range.end);
      if (begin >= end) continue;
      Part part;
      part.server = r.server;
      part.origin = old.origin;
      part.range = DenseRange{r.server, begin, end};
      fresh.push_back(std::move(part));
    }
  } else {
    std::vector<std::vector<uint32_t>> by_server(map.num_servers());
    for (uint32_t u : old.indices) by_server[map.OwnerOfKey(unique[u])].push_back(u);
    for (int32_t s = 0; s < map.num_servers(); ++s) {
      if (by_server[s].empty()) continue;
      Part part;
      part.server = s;
      part.origin = old.origin;
      part.indices = std::move(by_server[s]);
      fresh.push_back(std::move(part));
    }
  }
  std::vector<size_t> added;
  for (Part& part : fresh) {
    part.epoch = epoch;
    added.push_back(parts.size());
    parts.push_back(std::move(part));
  }
  remaining += static_cast<int>(added.size()) - 1;
  return added;
}

void KvClient::UpdateView(protocol::ClusterView view) {
  std::vector<std::shared_ptr<Op>> ops;
  {
    MutexLock lock(&mu_);
    if (view.epoch <= view_.epoch) return;
    view_ = std::move(view);
    for (const auto& [t, op] : ops_) ops.push_back(op);
  }
  for (const std::shared_ptr<Op>& op : ops) RetryWithNewerView(op);
}

void KvClient::FailAll(const Status& status) {
  std::vector<std::shared_ptr<Op>> ops;
  {
    MutexLock lock(&mu_);
    for (const auto& [t, op] : ops_) ops.push_back(op);
  }
  for (const std::shared_ptr<Op>& op : ops) {
    std::vector<uint64_t> cancel;
    {
      MutexLock lock(&op->mu);
      if (op->abandoned || op->remaining <= 0) continue;
      for (Part& part : op->parts) {
        if (part.done) continue;
        if (part.request_id != 0) cancel.push_back(part.request_id);
        part.done = true;
      }
      op->remaining = 0;
      if (op->status.ok()) op->status = status;
    }
    for (uint64_t id : cancel) messenger_->Cancel(id);
  }
}

Status KvClient::Wait(Ticket ticket, SteadyTime deadline) {
  std::shared_ptr<Op> op;
  {
    MutexLock lock(&mu_);
    auto it = ops_.find(ticket);
    if (it == ops_.end()) return NotFoundError("kv: unknown ticket " + std::to_string(ticket));
    op = it->second;
  }
  std::vector<uint64_t> abandoned_requests;
  int missing = 0;
  {
    MutexLock lock(&op->mu);
    auto done = [&op]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(op->mu) { return op->remaining <= 0; };
    if (!op->mu.AwaitWithDeadline(absl::Condition(&done), ToAbslTime(deadline))) {
      op->abandoned = true;  // replies arriving from now on are dropped
      for (const Part& part : op->parts) {
        if (!part.done && part.request_id != 0) abandoned_requests.push_back(part.request_id);
      }
      missing = op->remaining;
    }
  }
  {
    MutexLock lock(&mu_);
    ops_.erase(ticket);
  }
  if (missing == 0) {
    MutexLock lock(&op->mu);
    return op->status;
  }
  for (uint64_t id : abandoned_requests) messenger_->Cancel(id);
  return DeadlineExceededError("kv: " + std::to_string(missing) +
                               " server replies missing at the deadline");
}

}  // namespace tessera::worker
