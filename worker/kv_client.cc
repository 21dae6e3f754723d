#include "worker/kv_client.h"

#include <chrono>
#include <cstring>
#include <utility>
#include <vector>

namespace tessera::worker {

using protocol::DecodedMessage;
using protocol::Header;

// One logical operation split into one request per part (server or range).
struct KvClient::Op {
  Mutex mu;
  int remaining TESSERA_GUARDED_BY(mu) = 0;
  Status status TESSERA_GUARDED_BY(mu);
  bool abandoned TESSERA_GUARDED_BY(mu) = false;
  std::vector<uint64_t> request_ids TESSERA_GUARDED_BY(mu);

  // The plan; written before any request is sent, then read-only.
  bool returns_values = false;
  size_t dim = 0;
  std::span<float> out;
  std::vector<Key> unique;                   // sparse: unique keys
  std::vector<uint32_t> index_of;            // position -> unique index; empty = identity
  std::vector<std::vector<uint32_t>> parts;  // sparse: unique indices per server
  std::vector<DenseRange> ranges;            // dense: one range per part
  std::vector<float> unique_values;          // sparse pulls with duplicate keys
  OpMetrics* metrics = nullptr;
  std::chrono::steady_clock::time_point start;
};

KvClient::KvClient(protocol::Messenger* messenger, protocol::ClusterView view,
                   MetricsRegistry* metrics)
    : messenger_(messenger),
      view_(std::move(view)),
      metrics_(metrics),
      pull_(MakeOpMetrics("pull")),
      push_(MakeOpMetrics("push")),
      push_pull_(MakeOpMetrics("push_pull")),
      dense_pull_(MakeOpMetrics("dense_pull")),
      dense_push_(MakeOpMetrics("dense_push")) {}

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
  for (const TableConfig& t : view_.tables) {
    if (t.id == table) return &t;
  }
  return nullptr;
}

const TableConfig* KvClient::FindTable(const std::string& name) const {
  for (const TableConfig& t : view_.tables) {
    if (t.name == name) return &t;
  }
  return nullptr;
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
  op->returns_values = kind != Kind::kPush;
  op->dim = dim;
  op->out = out;
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
  std::vector<float> summed;
  std::span<const float> unique_grads = grads;
  if (!duplicates) {
    op->index_of.clear();
  } else {
    if (op->returns_values) op->unique_values.resize(op->unique.size() * dim);
    if (kind != Kind::kPull) {
      summed.assign(op->unique.size() * dim, 0.0f);
      for (size_t j = 0; j < n; ++j) {
        float* dst = &summed[op->index_of[j] * dim];
        const float* src = &grads[j * dim];
        for (size_t d = 0; d < dim; ++d) dst[d] += src[d];
      }
      unique_grads = summed;
    }
  }
  // Split by owner.
  const int num_servers = view_.shard_map.num_servers();
  op->parts.resize(num_servers);
  for (uint32_t u = 0; u < op->unique.size(); ++u) {
    op->parts[view_.shard_map.OwnerOfKey(op->unique[u])].push_back(u);
  }
  int nonempty = 0;
  for (const auto& p : op->parts) nonempty += p.empty() ? 0 : 1;
  {
    MutexLock lock(&op->mu);
    op->remaining = nonempty;
  }
  op->metrics->requests->Increment();
  op->metrics->keys->Increment(static_cast<double>(n));
  Ticket ticket = Register(op);
  for (int s = 0; s < num_servers; ++s) {
    const std::vector<uint32_t>& part = op->parts[s];
    if (part.empty()) continue;
    auto fill = [&](std::span<Key> k, std::span<float> g) {
      for (size_t i = 0; i < part.size(); ++i) {
        k[i] = op->unique[part[i]];
        if (!g.empty()) std::memcpy(&g[i * dim], &unique_grads[part[i] * dim], dim * sizeof(float));
      }
    };
    auto encode = [&](const Header& h) {
      switch (kind) {
        case Kind::kPull:
          return protocol::EncodePull(h, table, part.size(),
                                      [&](std::span<Key> k) { fill(k, {}); });
        case Kind::kPush:
          return protocol::EncodePush(h, table, part.size(), part.size() * dim, fill);
        case Kind::kPushPull:
          break;
      }
      return protocol::EncodePushPull(h, table, part.size(), part.size() * dim, fill);
    };
    StatusOr<uint64_t> id = messenger_->SendRequest(
        view_.servers[s].id, encode,
        [this, op, s](StatusOr<DecodedMessage> reply) { OnReply(op, s, std::move(reply)); });
    MutexLock lock(&op->mu);
    if (id.ok()) {
      op->request_ids.push_back(*id);
    } else {
      if (op->status.ok()) op->status = id.status();
      --op->remaining;
    }
  }
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
  op->returns_values = pull;
  op->out = out;
  op->metrics = pull ? &dense_pull_ : &dense_push_;
  op->start = std::chrono::steady_clock::now();
  op->ranges = view_.shard_map.DenseRanges(config->size);
  {
    MutexLock lock(&op->mu);
    op->remaining = static_cast<int>(op->ranges.size());
  }
  op->metrics->requests->Increment();
  op->metrics->keys->Increment(static_cast<double>(config->size));
  Ticket ticket = Register(op);
  for (size_t part = 0; part < op->ranges.size(); ++part) {
    const DenseRange r = op->ranges[part];
    auto encode = [&](const Header& h) {
      return pull ? protocol::EncodeDensePull(h, table, r.begin, r.end - r.begin)
                  : protocol::EncodeDensePush(h, table, r.begin,
                                              grads.subspan(r.begin, r.end - r.begin));
    };
    StatusOr<uint64_t> id = messenger_->SendRequest(
        view_.servers[r.server].id, encode,
        [this, op, part](StatusOr<DecodedMessage> reply) {
          OnReply(op, static_cast<int>(part), std::move(reply));
        });
    MutexLock lock(&op->mu);
    if (id.ok()) {
      op->request_ids.push_back(*id);
    } else {
      if (op->status.ok()) op->status = id.status();
      --op->remaining;
    }
  }
  return ticket;
}

void KvClient::OnReply(const std::shared_ptr<Op>& op, int part,
                       StatusOr<DecodedMessage> reply) {
  MutexLock lock(&op->mu);
  if (op->abandoned) return;
  Status s = reply.ok() ? reply->header().status : reply.status();
  if (s.ok() && op->returns_values) {
    StatusOr<std::span<const float>> values = reply->AsValuesReply();
    if (!values.ok()) {
      s = values.status();
    } else if (!op->ranges.empty()) {  // dense
      const DenseRange& r = op->ranges[part];
      if (values->size() != r.end - r.begin) {
        s = DataLossError("kv: dense reply has " + std::to_string(values->size()) + " floats, want " +
                          std::to_string(r.end - r.begin));
      } else {
        std::memcpy(&op->out[r.begin], values->data(), values->size() * sizeof(float));
      }
    } else {
      const std::vector<uint32_t>& idx = op->parts[part];
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

Status KvClient::Wait(Ticket ticket, SteadyTime deadline) {
  std::shared_ptr<Op> op;
  {
    MutexLock lock(&mu_);
    auto it = ops_.find(ticket);
    if (it == ops_.end()) return NotFoundError("kv: unknown ticket " + std::to_string(ticket));
    op = it->second;
    ops_.erase(it);
  }
  std::vector<uint64_t> abandoned_requests;
  int missing = 0;
  {
    MutexLock lock(&op->mu);
    auto done = [&op]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(op->mu) { return op->remaining <= 0; };
    if (op->mu.AwaitWithDeadline(absl::Condition(&done), ToAbslTime(deadline))) {
      return op->status;
    }
    op->abandoned = true;  // replies arriving from now on are dropped
    abandoned_requests = op->request_ids;
    missing = op->remaining;
  }
  for (uint64_t id : abandoned_requests) messenger_->Cancel(id);
  return DeadlineExceededError("kv: " + std::to_string(missing) +
                               " server replies missing at the deadline");
}

}  // namespace tessera::worker
