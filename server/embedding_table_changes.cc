// EmbeddingTable beyond the batch hot path: change tracking (Capture),
// replication copies, untracked erasure, eviction and statistics.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <vector>

#include "server/embedding_table.h"
#include "server/embedding_table_internal.h"

namespace tessera::server {

void EmbeddingTable::CopyRows(std::span<const Key> keys, std::vector<std::byte>& records,
                              std::vector<Key>& absent) const {
  const size_t record = record_bytes();
  for (Key key : keys) {
    const uint64_t hash = HashKey(key);
    const Stripe& stripe = stripes_[StripeOf(hash)];
    absl::ReaderMutexLock lock(&stripe.mu);
    const std::byte* row = stripe.store.Find(key, hash);
    if (row == nullptr) {
      absent.push_back(key);
      continue;
    }
    const size_t at = records.size();
    records.resize(at + record);
    std::memcpy(records.data() + at, row, record);
    reinterpret_cast<RowHeader*>(records.data() + at)->update_count &= ~kDirtyBit;
  }
}

void EmbeddingTable::CopyAllRows(std::vector<std::byte>& records) const {
  const size_t record = record_bytes();
  for (int s = 0; s < num_stripes(); ++s) {
    const Stripe& stripe = stripes_[s];
    absl::ReaderMutexLock lock(&stripe.mu);
    records.reserve(records.size() + size_t{stripe.store.size()} * record);
    for (uint32_t id = 0; id < stripe.store.size(); ++id) {
      const size_t at = records.size();
      records.resize(at + record);
      std::memcpy(records.data() + at, stripe.store.row(id), record);
      reinterpret_cast<RowHeader*>(records.data() + at)->update_count &= ~kDirtyBit;
    }
  }
}

size_t EmbeddingTable::EraseIf(const std::function<bool(Key)>& doomed) {
  size_t removed = 0;
  for (int s = 0; s < num_stripes(); ++s) {
    Stripe& stripe = stripes_[s];
    MutexLock lock(&stripe.mu);
    RowStore& store = stripe.store;
    // Backwards: Erase moves the last row (already visited) into the hole.
    for (uint32_t id = store.size(); id-- > 0;) {
      const Key key = KeyOf(store.row(id));
      if (!doomed(key)) continue;
      store.Erase(key, HashKey(key));
      ++removed;
    }
  }
  return removed;
}

Status EmbeddingTable::InsertRecords(std::span<const std::byte> records, bool mark_changed) {
  const size_t record = record_bytes();
  if (records.size() % record != 0) {
    return InvalidArgumentError("table " + std::to_string(id_) + ": " +
                                std::to_string(records.size()) +
                                " record bytes, not a multiple of the record size " +
                                std::to_string(record));
  }
  std::vector<float> floats(dim_ + state_floats_);
  for (size_t at = 0; at < records.size(); at += record) {
    RowHeader header;
    std::memcpy(&header, records.data() + at, sizeof(header));
    std::memcpy(floats.data(), records.data() + at + sizeof(RowHeader),
                floats.size() * sizeof(float));
    TESSERA_RETURN_IF_ERROR(InsertRow(header.key, header.update_count, header.last_update_unix_s,
                                      std::span<const float>(floats).first(dim_),
                                      std::span<const float>(floats).subspan(dim_), mark_changed));
  }
  return OkStatus();
}

EmbeddingTable::Captured EmbeddingTable::Capture(bool full) {
  Captured out;
  out.dim = dim_;
  out.state_floats = state_floats_;
  const size_t record = out.record_bytes();
  // Tombstones first: a key removed after this point is in the next
  // capture's tombstones, so a row copied below is never followed by its own
  // earlier tombstone.
  tracking_.store(true);
  {
    MutexLock lock(&deleted_mu_);
    if (!full) out.deleted.swap(deleted_);
    deleted_.clear();
  }
  auto copy = [&](std::byte* row) {
    const size_t at = out.rows.size();
    out.rows.resize(at + record);
    std::memcpy(out.rows.data() + at, row, record);
    reinterpret_cast<RowHeader*>(out.rows.data() + at)->update_count &= ~kDirtyBit;
    Header(row)->update_count &= ~kDirtyBit;
  };
  for (int s = 0; s < num_stripes(); ++s) {
    Stripe& stripe = stripes_[s];
    MutexLock lock(&stripe.mu);
    RowStore& store = stripe.store;
    if (full) {
      out.rows.reserve(out.rows.size() + size_t{store.size()} * record);
      for (uint32_t id = 0; id < store.size(); ++id) copy(store.row(id));
    } else {
      for (Key key : stripe.dirty) {
        std::byte* row = store.Find(key, HashKey(key));
        if (row != nullptr && (Header(row)->update_count & kDirtyBit) != 0) copy(row);
      }
    }
    stripe.dirty.clear();
    if (stripe.dirty.capacity() > kMaxKeptScratch) stripe.dirty.shrink_to_fit();
  }
  return out;
}

std::vector<Key> EmbeddingTable::Tombstones() const {
  std::vector<Key> keys;
  {
    MutexLock lock(&deleted_mu_);
    keys = deleted_;
  }
  std::sort(keys.begin(), keys.end());
  keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
  std::erase_if(keys, [this](Key key) {
    const uint64_t hash = HashKey(key);
    const Stripe& stripe = stripes_[StripeOf(hash)];
    absl::ReaderMutexLock lock(&stripe.mu);
    return stripe.store.Find(key, hash) != nullptr;
  });
  return keys;
}

void EmbeddingTable::AddTombstones(std::span<const Key> keys) {
  if (!tracking_.load() || keys.empty()) return;
  MutexLock lock(&deleted_mu_);
  deleted_.insert(deleted_.end(), keys.begin(), keys.end());
}

size_t EmbeddingTable::EvictFromStripe(uint32_t s, const std::function<bool(uint32_t)>& doomed,
                                       size_t limit, std::vector<Key>& evicted) {
  Stripe& stripe = stripes_[s];
  MutexLock lock(&stripe.mu);
  RowStore& store = stripe.store;
  size_t removed = 0;
  // Backwards: Erase moves the last row (already visited) into the hole.
  for (uint32_t id = store.size(); id-- > 0 && removed < limit;) {
    const std::byte* row = store.row(id);
    if (!doomed(reinterpret_cast<const RowHeader*>(row)->last_update_unix_s)) continue;
    const Key key = KeyOf(row);
    store.Erase(key, HashKey(key));
    evicted.push_back(key);
    ++removed;
  }
  return removed;
}

size_t EmbeddingTable::EvictOldest(size_t excess, std::vector<Key>& evicted) {
  std::vector<uint32_t> times;
  for (int s = 0; s < num_stripes(); ++s) {
    absl::ReaderMutexLock lock(&stripes_[s].mu);
    const RowStore& store = stripes_[s].store;
    for (uint32_t id = 0; id < store.size(); ++id) {
      times.push_back(reinterpret_cast<const RowHeader*>(store.row(id))->last_update_unix_s);
    }
  }
  if (times.empty() || excess == 0) return 0;
  excess = std::min(excess, times.size());
  // The excess-th oldest timestamp: rows older than it all go, then rows of
  // exactly that second until `excess` rows are gone.
  std::nth_element(times.begin(), times.begin() + static_cast<ptrdiff_t>(excess - 1), times.end());
  const uint32_t cutoff = times[excess - 1];
  size_t removed = 0;
  for (uint32_t s = 0; s < static_cast<uint32_t>(num_stripes()) && removed < excess; ++s) {
    removed += EvictFromStripe(s, [cutoff](uint32_t t) { return t < cutoff; }, excess - removed,
                               evicted);
  }
  for (uint32_t s = 0; s < static_cast<uint32_t>(num_stripes()) && removed < excess; ++s) {
    removed += EvictFromStripe(s, [cutoff](uint32_t t) { return t == cutoff; }, excess - removed,
                               evicted);
  }
  return removed;
}

size_t EmbeddingTable::Evict(int64_t now_unix_s, std::vector<Key>* evicted_out) {
  MutexLock lock(&evict_mu_);
  std::vector<Key> evicted;
  size_t by_ttl = 0, by_rows = 0;
  if (eviction_.ttl_s > 0) {
    const int64_t cutoff = now_unix_s - int64_t{eviction_.ttl_s};
    for (uint32_t s = 0; s < static_cast<uint32_t>(num_stripes()); ++s) {
      by_ttl += EvictFromStripe(s, [cutoff](uint32_t t) { return int64_t{t} <= cutoff; },
                                std::numeric_limits<size_t>::max(), evicted);
    }
  }
  if (eviction_.max_rows > 0) {
    const size_t rows = num_rows();
    if (rows > eviction_.max_rows) by_rows = EvictOldest(rows - eviction_.max_rows, evicted);
  }
  if (tracking_.load() && !evicted.empty()) {
    MutexLock deleted_lock(&deleted_mu_);
    deleted_.insert(deleted_.end(), evicted.begin(), evicted.end());
  }
  evicted_ttl_.fetch_add(by_ttl, std::memory_order_relaxed);
  evicted_max_rows_.fetch_add(by_rows, std::memory_order_relaxed);
  if (evicted_out != nullptr) evicted_out->insert(evicted_out->end(), evicted.begin(), evicted.end());
  return evicted.size();
}

size_t EmbeddingTable::MaybeEvict(int64_t now_unix_s, std::vector<Key>* evicted_out) {
  if (eviction_.ttl_s == 0 && eviction_.max_rows == 0) return 0;
  int64_t next = next_sweep_s_.load(std::memory_order_relaxed);
  if (now_unix_s < next) return 0;
  if (!next_sweep_s_.compare_exchange_strong(next, now_unix_s + 1)) return 0;  // Another sweeps.
  return Evict(now_unix_s, evicted_out);
}

EmbeddingTable::Stats EmbeddingTable::stats() const {
  return {rows_admitted_.load(std::memory_order_relaxed),
          keys_rejected_.load(std::memory_order_relaxed),
          evicted_ttl_.load(std::memory_order_relaxed),
          evicted_max_rows_.load(std::memory_order_relaxed),
          keys_pulled_.load(std::memory_order_relaxed),
          pull_misses_.load(std::memory_order_relaxed)};
}

size_t EmbeddingTable::sketch_bytes() const {
  size_t bytes = 0;
  for (int s = 0; s < num_stripes(); ++s) {
    absl::ReaderMutexLock lock(&stripes_[s].mu);
    if (stripes_[s].sketch) bytes += stripes_[s].sketch->memory_bytes();
  }
  return bytes;
}

void EmbeddingTable::ForEachRow(const std::function<void(const RowView&)>& fn) const {
  for (int s = 0; s < num_stripes(); ++s) {
    const Stripe& stripe = stripes_[s];
    absl::ReaderMutexLock lock(&stripe.mu);
    for (uint32_t id = 0; id < stripe.store.size(); ++id) {
      fn(RowView(stripe.store.row(id), dim_, state_floats_));
    }
  }
}

size_t EmbeddingTable::num_rows() const {
  size_t rows = 0;
  for (int s = 0; s < num_stripes(); ++s) {
    absl::ReaderMutexLock lock(&stripes_[s].mu);
    rows += stripes_[s].store.size();
  }
  return rows;
}

size_t EmbeddingTable::memory_bytes() const {
  size_t bytes = sizeof(*this) + sizeof(Stripe) * num_stripes();
  for (int s = 0; s < num_stripes(); ++s) {
    absl::ReaderMutexLock lock(&stripes_[s].mu);
    bytes += stripes_[s].store.memory_bytes();
    if (stripes_[s].sketch) bytes += stripes_[s].sketch->memory_bytes();
  }
  return bytes;
}

}  // namespace tessera::server
