// EmbeddingTable: lock striping over per-stripe RowStores
// (server/embedding_table_internal.h); this file holds the batch hot path
// (Pull, Push, PushPull), embedding_table_changes.cc the rest.
#include "server/embedding_table.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "server/embedding_table_internal.h"
#include "server/initializer.h"

namespace tessera::server {

EmbeddingTable::EmbeddingTable(const Options& options)
    : id_(options.id),
      dim_(options.dim),
      state_floats_(options.optimizer == nullptr
                        ? 0
                        : options.dim * options.optimizer->state_floats_per_dim()),
      // Rounded up so that every row's header is aligned in the arena.
      row_bytes_((sizeof(RowHeader) + (dim_ + state_floats_) * sizeof(float) +
                  alignof(RowHeader) - 1) /
                 alignof(RowHeader) * alignof(RowHeader)),
      optimizer_(options.optimizer),
      initializer_(options.initializer),
      stripe_bits_(StripeBits(options.num_stripes)),
      min_count_(options.admission.min_count),
      missing_zeros_(options.admission.missing_reads_zero()),
      eviction_(options.eviction),
      stripes_(new Stripe[size_t{1} << stripe_bits_]) {
  if (optimizer_ == nullptr) Die("REQUIRES: Options::optimizer != nullptr");
  if (dim_ == 0) Die("REQUIRES: Options::dim >= 1");
  for (int s = 0; s < num_stripes(); ++s) {
    MutexLock lock(&stripes_[s].mu);  // Not needed before publication; keeps the analysis happy.
    stripes_[s].store.Configure(row_bytes_, stripe_bits_);
    if (min_count_ > 1) {
      stripes_[s].sketch = std::make_unique<CountMinSketch>(CountMinSketch::Options{
          .memory_bytes = options.admission_sketch_bytes / static_cast<size_t>(num_stripes()),
          .depth = 4,
          .seed = options.admission_seed * 1024 + static_cast<uint64_t>(s)});
    }
  }
}

EmbeddingTable::~EmbeddingTable() = default;

uint32_t EmbeddingTable::StripeOf(uint64_t hash) const {
  return stripe_bits_ == 0 ? 0 : static_cast<uint32_t>(hash >> (64 - stripe_bits_));
}

void EmbeddingTable::GroupByStripe(std::span<const Key> keys, Scratch& scratch) const {
  const size_t n = keys.size();
  const uint32_t num = 1u << stripe_bits_;
  scratch.hashes.resize(n);
  scratch.order.resize(n);
  scratch.group_begin.assign(num + 1, 0);
  // Counting sort: stable, so a stripe's positions stay in batch order.
  for (size_t i = 0; i < n; ++i) {
    scratch.hashes[i] = HashKey(keys[i]);
    ++scratch.group_begin[StripeOf(scratch.hashes[i]) + 1];
  }
  for (uint32_t s = 0; s < num; ++s) scratch.group_begin[s + 1] += scratch.group_begin[s];
  // group_begin[s] serves as stripe s's cursor, ending at group_begin[s + 1];
  // shifting by one stripe afterwards restores the starts.
  for (size_t i = 0; i < n; ++i) {
    scratch.order[scratch.group_begin[StripeOf(scratch.hashes[i])]++] = static_cast<uint32_t>(i);
  }
  for (uint32_t s = num; s > 0; --s) scratch.group_begin[s] = scratch.group_begin[s - 1];
  scratch.group_begin[0] = 0;
}

void EmbeddingTable::InitRow(std::byte* row, Key key) const {
  RowHeader* header = Header(row);
  header->key = key;
  header->update_count = 0;
  header->last_update_unix_s = 0;
  float* floats = Floats(row);
  InitializeRow(initializer_, id_, key, {floats, dim_});
  optimizer_->InitState({floats + dim_, state_floats_});
}

void EmbeddingTable::ApplyGradient(std::byte* row, const float* grad, uint32_t now) const {
  RowHeader* header = Header(row);
  uint32_t count = header->update_count & ~kDirtyBit;
  if (count != kMaxUpdateCount) ++count;
  header->update_count = count | (header->update_count & kDirtyBit);
  header->last_update_unix_s = now;
  float* floats = Floats(row);
  optimizer_->Update({floats, dim_}, {floats + dim_, state_floats_}, {grad, dim_}, count);
}

void EmbeddingTable::Pull(std::span<const Key> keys, std::span<float> out) const {
  if (out.size() != keys.size() * dim_) Die("REQUIRES: out.size() == keys.size() * dim");
  if (keys.empty()) return;
  Scratch& scratch = Scratch::Local();
  GroupByStripe(keys, scratch);
  scratch.missing.clear();
  const uint32_t num = 1u << stripe_bits_, first = StripeOf(scratch.hashes[0]);
  for (uint32_t n = 0; n < num; ++n) {
    const uint32_t s = (first + n) & (num - 1);
    const uint32_t begin = scratch.group_begin[s], end = scratch.group_begin[s + 1];
    if (begin != end) PullStripe(s, keys, out, scratch, begin, end);
  }
  if (min_count_ > 1 && !scratch.missing.empty()) CountMissing(keys, scratch.missing, scratch);
  keys_pulled_.fetch_add(keys.size(), std::memory_order_relaxed);
  if (!scratch.missing.empty()) {
    pull_misses_.fetch_add(scratch.missing.size(), std::memory_order_relaxed);
  }
  // Initial values of missing keys are computed outside every lock.
  for (uint32_t i : scratch.missing) {
    const std::span<float> row = out.subspan(size_t{i} * dim_, dim_);
    if (missing_zeros_) {
      std::fill(row.begin(), row.end(), 0.0f);
    } else {
      InitializeRow(initializer_, id_, keys[i], row);
    }
  }
  scratch.Trim();
}

void EmbeddingTable::CountMissing(std::span<const Key> keys, std::span<const uint32_t> positions,
                                  const Scratch& scratch) const {
  size_t j = 0;
  while (j < positions.size()) {
    const uint32_t s = StripeOf(scratch.hashes[positions[j]]);
    Stripe& stripe = stripes_[s];
    MutexLock lock(&stripe.mu);
    for (; j < positions.size() && StripeOf(scratch.hashes[positions[j]]) == s; ++j) {
      stripe.sketch->Add(keys[positions[j]]);
    }
  }
}

void EmbeddingTable::PullStripe(uint32_t s, std::span<const Key> keys, std::span<float> out,
                                Scratch& scratch, uint32_t begin, uint32_t end) const {
  const Stripe& stripe = stripes_[s];
  absl::ReaderMutexLock lock(&stripe.mu);
  const RowStore& store = stripe.store;
  const uint32_t* order = scratch.order.data();
  const uint64_t* hashes = scratch.hashes.data();
  const size_t value_bytes = sizeof(RowHeader) + dim_ * sizeof(float);
  for (uint32_t w = begin; w < end; w += kWindow) {
    const uint32_t w_end = std::min(w + kWindow, end);
    for (uint32_t j = w; j < w_end; ++j) store.PrefetchSlot(hashes[order[j]]);
    const std::byte* guess[kWindow];
    for (uint32_t j = w; j < w_end; ++j) {
      guess[j - w] = store.PrefetchGuess(hashes[order[j]], value_bytes, Intent::kRead);
    }
    for (uint32_t j = w; j < w_end; ++j) {
      const uint32_t i = order[j];
      const std::byte* row = guess[j - w];
      if (row == nullptr || KeyOf(row) != keys[i]) row = store.Find(keys[i], hashes[i]);
      if (row == nullptr) {
        scratch.missing.push_back(i);
      } else {
        std::memcpy(&out[size_t{i} * dim_], row + sizeof(RowHeader), dim_ * sizeof(float));
      }
    }
  }
}

void EmbeddingTable::Push(std::span<const Key> keys, std::span<const float> grads,
                          int64_t now_unix_s) {
  if (grads.size() != keys.size() * dim_) Die("REQUIRES: grads.size() == keys.size() * dim");
  Update(keys, grads, {}, now_unix_s, Mode::kPush);
}

void EmbeddingTable::PushPull(std::span<const Key> keys, std::span<const float> grads,
                              std::span<float> out, int64_t now_unix_s) {
  if (grads.size() != keys.size() * dim_ || out.size() != grads.size()) {
    Die("REQUIRES: grads.size() == out.size() == keys.size() * dim");
  }
  Update(keys, grads, out, now_unix_s, Mode::kPushPull);
}

void EmbeddingTable::Update(std::span<const Key> keys, std::span<const float> grads,
                            std::span<float> out, int64_t now_unix_s, Mode mode) {
  if (keys.empty()) return;
  Scratch& scratch = Scratch::Local();
  GroupByStripe(keys, scratch);
  if (mode == Mode::kPushPull) scratch.rows.resize(keys.size());
  const uint32_t now = ClampUnixSeconds(now_unix_s);
  // Batches start at different stripes, so concurrent batches do not queue
  // up behind each other stripe after stripe.
  const uint32_t num = 1u << stripe_bits_, first = StripeOf(scratch.hashes[0]);
  for (uint32_t n = 0; n < num; ++n) {
    const uint32_t s = (first + n) & (num - 1);
    const uint32_t begin = scratch.group_begin[s], end = scratch.group_begin[s + 1];
    if (begin != end) UpdateStripe(s, keys, grads, out, now, mode, scratch, begin, end);
  }
  scratch.Trim();
}

void EmbeddingTable::UpdateStripe(uint32_t s, std::span<const Key> keys,
                                  std::span<const float> grads, std::span<float> out,
                                  uint32_t now, Mode mode, Scratch& scratch, uint32_t begin,
                                  uint32_t end) {
  Stripe& stripe = stripes_[s];
  MutexLock lock(&stripe.mu);
  RowStore& store = stripe.store;
  CountMinSketch* const sketch = stripe.sketch.get();
  const uint32_t* order = scratch.order.data();
  const uint64_t* hashes = scratch.hashes.data();
  uint64_t admitted = 0, rejected = 0;
  const bool track = tracking_.load(std::memory_order_relaxed);
  for (uint32_t w = begin; w < end; w += kWindow) {
    const uint32_t w_end = std::min(w + kWindow, end);
    for (uint32_t j = w; j < w_end; ++j) store.PrefetchSlot(hashes[order[j]]);
    std::byte* guess[kWindow];
    for (uint32_t j = w; j < w_end; ++j) {
      guess[j - w] = store.PrefetchGuess(hashes[order[j]], row_bytes_, Intent::kWrite);
    }
    for (uint32_t j = w; j < w_end; ++j) {
      const uint32_t i = order[j];
      // Rows never move while the lock is held, and a row whose key matches
      // is the key's only row, so a right guess stays right even after
      // inserts earlier in the window.
      std::byte* row = guess[j - w];
      if (row == nullptr || KeyOf(row) != keys[i]) {
        // Admission: a key without a row gets one at its min_count-th
        // occurrence; until then its gradient is dropped.
        row = nullptr;
        if (sketch != nullptr && (row = store.Find(keys[i], hashes[i])) == nullptr &&
            sketch->Add(keys[i]) < min_count_) {
          ++rejected;
          if (mode == Mode::kPushPull) scratch.rows[j] = nullptr;
          continue;
        }
        if (row == nullptr) {
          bool inserted;
          row = store.FindOrInsert(keys[i], hashes[i], &inserted);
          if (inserted) {
            InitRow(row, keys[i]);
            ++admitted;
          }
        }
      }
      ApplyGradient(row, &grads[size_t{i} * dim_], now);
      if (track && (Header(row)->update_count & kDirtyBit) == 0) {
        Header(row)->update_count |= kDirtyBit;
        stripe.dirty.push_back(keys[i]);
      }
      if (mode == Mode::kPushPull) scratch.rows[j] = row;
    }
  }
  if (admitted != 0) rows_admitted_.fetch_add(admitted, std::memory_order_relaxed);
  if (rejected != 0) keys_rejected_.fetch_add(rejected, std::memory_order_relaxed);
  if (mode != Mode::kPushPull) return;
  // After every gradient of the stripe, so a repeated key reads its final value.
  for (uint32_t j = begin; j < end; ++j) {
    const uint32_t i = order[j];
    float* dst = &out[size_t{i} * dim_];
    // A dropped occurrence reads the row if a later one admitted the key,
    // else the initial value.
    std::byte* row = scratch.rows[j] != nullptr ? scratch.rows[j] : store.Find(keys[i], hashes[i]);
    if (row == nullptr && missing_zeros_) {
      std::fill(dst, dst + dim_, 0.0f);
    } else if (row == nullptr) {
      InitializeRow(initializer_, id_, keys[i], {dst, dim_});
    } else {
      std::memcpy(dst, Floats(row), dim_ * sizeof(float));
    }
  }
}

bool EmbeddingTable::Erase(Key key) {
  const uint64_t hash = HashKey(key);
  Stripe& stripe = stripes_[StripeOf(hash)];
  bool erased;
  {
    MutexLock lock(&stripe.mu);
    erased = stripe.store.Erase(key, hash);
  }
  if (erased && tracking_.load()) {
    MutexLock lock(&deleted_mu_);
    deleted_.push_back(key);
  }
  return erased;
}

Status EmbeddingTable::InsertRow(Key key, uint32_t update_count, uint32_t last_update_unix_s,
                                 std::span<const float> value, std::span<const float> state,
                                 bool mark_changed) {
  if (value.size() != dim_) {
    return InvalidArgumentError("table " + std::to_string(id_) + ": row of key " +
                                std::to_string(key) + " has " + std::to_string(value.size()) +
                                " values, expected " + std::to_string(dim_));
  }
  if (!state.empty() && state.size() != state_floats_) {
    return InvalidArgumentError("table " + std::to_string(id_) + ": row of key " +
                                std::to_string(key) + " has " + std::to_string(state.size()) +
                                " state floats, expected " + std::to_string(state_floats_));
  }
  const uint64_t hash = HashKey(key);
  Stripe& stripe = stripes_[StripeOf(hash)];
  MutexLock lock(&stripe.mu);
  bool inserted;
  std::byte* row = stripe.store.FindOrInsert(key, hash, &inserted);
  RowHeader* header = Header(row);
  header->key = key;
  const bool was_dirty = !inserted && (header->update_count & kDirtyBit) != 0;
  header->update_count = std::min(update_count & ~kDirtyBit, kMaxUpdateCount);
  header->last_update_unix_s = last_update_unix_s;
  if (was_dirty || (mark_changed && tracking_.load())) {
    header->update_count |= kDirtyBit;
    if (!was_dirty) stripe.dirty.push_back(key);
  }
  float* floats = Floats(row);
  std::memcpy(floats, value.data(), dim_ * sizeof(float));
  if (state.empty()) {
    optimizer_->InitState({floats + dim_, state_floats_});
  } else {
    std::memcpy(floats + dim_, state.data(), state_floats_ * sizeof(float));
  }
  return OkStatus();
}

}  // namespace tessera::server
