// EmbeddingTable: lock striping over per-stripe RowStores.
//
// A RowStore is an open-addressing index plus a chunked row arena (both in
// this file so that the hot path inlines). Index slots are 4 bytes:
//   slot = (tag << bits) | (row_id + 1),   0 = empty,
// where 2^bits is the slot count. Row ids stay below the slot count (the
// arena is dense and the load factor is < 1), so the low `bits` bits hold the
// id and the remaining 32 - bits bits hold hash bits that reject almost every
// non-matching slot without touching its row. Probing is linear; Erase uses
// backward-shift deletion, so there are no tombstones.
//
// Hash bits: h = Mix64(key ^ salt). The top stripe_bits pick the stripe, the
// next `bits` the home slot, the low 32 - bits the tag. The salt keeps the
// stripe independent of SlotOfKey() (which hashes with Mix64(key)): all keys
// on one server share a few slot ranges, but spread over every stripe.
//
// Over 400 lines: the index, the arena and the batch pipeline are one
// hot path, kept together so the compiler sees all of it.
#include "server/embedding_table.h"

#include <algorithm>
#include <bit>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <vector>

#include "common/logging.h"
#include "common/mutex.h"
#include "common/sharding.h"
#include "server/initializer.h"

namespace tessera::server {
namespace {

constexpr uint64_t kIndexSalt = 0x2545f4914f6cdd1dULL;
inline uint64_t HashKey(Key key) { return Mix64(key ^ kIndexSalt); }

constexpr int kMaxStripeBits = 10;
// The index grows (doubles) when it would exceed 4/5 full.
constexpr uint64_t kMaxLoadNumerator = 4;
constexpr uint64_t kMaxLoadDenominator = 5;
constexpr int kMinIndexBits = 4;
constexpr int kMaxIndexBits = 31;  // Leaves at least one tag bit.
// Arena chunks: the first holds kFirstChunkRows rows, then sizes double up to
// about kMaxChunkBytes, so small stripes stay small and big ones allocate
// rarely.
constexpr uint32_t kFirstChunkRows = 8;
constexpr size_t kMaxChunkBytes = 64 << 10;
// Batch calls work on windows of up to kWindow keys of one stripe: prefetch
// every index slot of the window, then every (guessed) row, then process the
// keys, so that a window's cache misses overlap. Windows rather than a
// sliding prefetch distance because a stripe's share of a batch can be short.
// 32 measured best (2M rows, dim 16: 8 and 16 were slower, 64 no better).
constexpr uint32_t kWindow = 32;
// Scratch vectors above this many elements are freed after a call.
constexpr size_t kMaxKeptScratch = 1 << 16;

[[noreturn]] void Die(const char* what) {
  TESSERA_LOG(kError) << "EmbeddingTable: " << what;
  std::abort();
}

enum class Intent { kRead, kWrite };

// Prefetches every cache line of [p, p + bytes). REQUIRES: bytes > 0.
void PrefetchBytes(const std::byte* p, size_t bytes, Intent intent) {
  constexpr uintptr_t kLine = 64;
  const uintptr_t last = reinterpret_cast<uintptr_t>(p) + bytes - 1;
  for (uintptr_t line = reinterpret_cast<uintptr_t>(p) & ~(kLine - 1); line <= last;
       line += kLine) {
    if (intent == Intent::kWrite) {
      __builtin_prefetch(reinterpret_cast<const void*>(line), 1, 3);
    } else {
      __builtin_prefetch(reinterpret_cast<const void*>(line), 0, 3);
    }
  }
}

EmbeddingTable::RowHeader* Header(std::byte* row) {
  return reinterpret_cast<EmbeddingTable::RowHeader*>(row);
}
Key KeyOf(const std::byte* row) {
  return reinterpret_cast<const EmbeddingTable::RowHeader*>(row)->key;
}
float* Floats(std::byte* row) {
  return reinterpret_cast<float*>(row + sizeof(EmbeddingTable::RowHeader));
}

// Rows of one stripe, appended in chunks that never move. Thread-compatible.
// Chunk 0 holds B = 2^first_bits rows, chunk c in 1..k holds B * 2^(c-1)
// (so chunks 0..k cover ids [0, M) with M = B * 2^k = 2^max_bits), and every
// later chunk holds M rows.
class RowArena {
 public:
  // REQUIRES: called once, before anything else.
  void Configure(size_t row_bytes) {
    row_bytes_ = row_bytes;
    max_bits_ = static_cast<int>(std::bit_width(std::max<size_t>(kMaxChunkBytes / row_bytes, 1))) - 1;
    first_bits_ = std::min(static_cast<int>(std::bit_width(kFirstChunkRows)) - 1, max_bits_);
  }

  uint32_t size() const { return size_; }

  std::byte* row(uint32_t id) const {
    uint32_t chunk, offset;
    if (id >> max_bits_) {
      chunk = (max_bits_ - first_bits_) + (id >> max_bits_);
      offset = id & ((1u << max_bits_) - 1);
    } else {
      chunk = static_cast<uint32_t>(std::bit_width(id >> first_bits_));
      offset = chunk == 0 ? id : id - (1u << (first_bits_ + chunk - 1));
    }
    return chunks_[chunk].get() + offset * row_bytes_;
  }

  // Appends an uninitialized row; returns its id.
  uint32_t Append() {
    if (size_ == capacity_) {
      const size_t rows = ChunkRows(chunks_.size());
      chunks_.emplace_back(new std::byte[rows * row_bytes_]);
      capacity_ += rows;
    }
    return size_++;
  }

  // Drops the last row. Frees the last chunk once the one before it is empty
  // too, keeping one spare chunk against alloc/free churn at a boundary.
  void PopBack() {
    --size_;
    const size_t n = chunks_.size();
    if (n >= 2 && size_ + ChunkRows(n - 1) + ChunkRows(n - 2) <= capacity_) {
      capacity_ -= ChunkRows(n - 1);
      chunks_.pop_back();
    }
  }

  size_t memory_bytes() const {
    return capacity_ * row_bytes_ + chunks_.capacity() * sizeof(chunks_[0]);
  }

 private:
  size_t ChunkRows(size_t chunk) const {
    const int k = max_bits_ - first_bits_;
    if (chunk == 0) return size_t{1} << first_bits_;
    if (chunk <= static_cast<size_t>(k)) return size_t{1} << (first_bits_ + chunk - 1);
    return size_t{1} << max_bits_;
  }

  size_t row_bytes_ = 0;
  int max_bits_ = 0;
  int first_bits_ = 0;
  std::vector<std::unique_ptr<std::byte[]>> chunks_;
  size_t capacity_ = 0;  // Rows in allocated chunks.
  uint32_t size_ = 0;
};

// Index + arena of one stripe. Thread-compatible (the stripe lock guards it).
class RowStore {
 public:
  // A stripe array is default-constructed, so the geometry comes later.
  // REQUIRES: called once, before anything else.
  void Configure(size_t row_bytes, int stripe_bits) {
    row_bytes_ = row_bytes;
    stripe_bits_ = stripe_bits;
    arena_.Configure(row_bytes);
  }

  uint32_t size() const { return arena_.size(); }
  std::byte* row(uint32_t id) const { return arena_.row(id); }

  std::byte* Find(Key key, uint64_t hash) const {
    if (bits_ == 0) return nullptr;
    const uint32_t slot = slots_[Probe(key, hash)];
    return slot == 0 ? nullptr : row(IdOf(slot));
  }

  // Returns the row of `key`. A new row (*inserted = true) has only its key
  // set.
  std::byte* FindOrInsert(Key key, uint64_t hash, bool* inserted) {
    if (bits_ == 0) Rehash(kMinIndexBits);
    uint32_t pos = Probe(key, hash);
    *inserted = slots_[pos] == 0;
    if (!*inserted) return row(IdOf(slots_[pos]));
    if ((uint64_t{size()} + 1) * kMaxLoadDenominator > (uint64_t{1} << bits_) * kMaxLoadNumerator) {
      if (bits_ == kMaxIndexBits) Die("stripe index full");
      Rehash(bits_ + 1);
      pos = Probe(key, hash);
    }
    const uint32_t id = arena_.Append();
    slots_[pos] = Slot(hash, id);
    std::byte* r = row(id);
    Header(r)->key = key;
    return r;
  }

  // Removes `key`'s row, moving the last row into its place.
  bool Erase(Key key, uint64_t hash) {
    if (bits_ == 0) return false;
    const uint32_t pos = Probe(key, hash);
    if (slots_[pos] == 0) return false;
    const uint32_t id = IdOf(slots_[pos]);
    DeleteSlot(pos);
    const uint32_t last = size() - 1;
    if (id != last) {
      std::memcpy(row(id), row(last), row_bytes_);
      const Key moved = KeyOf(row(id));
      uint32_t& slot = slots_[Probe(moved, HashKey(moved))];  // Still names `last`.
      slot = (slot & ~IdMask()) | (id + 1);
    }
    arena_.PopBack();
    return true;
  }

  void PrefetchSlot(uint64_t hash) const {
    if (bits_ != 0) __builtin_prefetch(&slots_[Home(hash)], 0, 3);
  }

  // Guesses the row of `hash` from the index alone (the first tag match on
  // its probe path; nullptr when none is found quickly) and prefetches its
  // first `bytes`. Only a hint: the caller checks the key.
  std::byte* PrefetchGuess(uint64_t hash, size_t bytes, Intent intent) const {
    if (bits_ == 0) return nullptr;
    const uint32_t mask = (1u << bits_) - 1;
    const uint32_t tag = Tag(hash);
    uint32_t pos = Home(hash);
    for (int probes = 0; probes < 8; ++probes, pos = (pos + 1) & mask) {
      const uint32_t slot = slots_[pos];
      if (slot == 0) return nullptr;
      if ((slot >> bits_) == tag) {
        std::byte* guess = row(IdOf(slot));
        PrefetchBytes(guess, bytes, intent);
        return guess;
      }
    }
    return nullptr;
  }

  size_t memory_bytes() const {
    return (bits_ == 0 ? 0 : (size_t{1} << bits_) * sizeof(uint32_t)) + arena_.memory_bytes();
  }

 private:
  uint32_t Home(uint64_t hash) const {
    return static_cast<uint32_t>((hash << stripe_bits_) >> (64 - bits_));
  }
  uint32_t Tag(uint64_t hash) const {
    return static_cast<uint32_t>(hash) & ((1u << (32 - bits_)) - 1);
  }
  uint32_t IdMask() const { return (1u << bits_) - 1; }
  uint32_t IdOf(uint32_t slot) const { return (slot & IdMask()) - 1; }
  uint32_t Slot(uint64_t hash, uint32_t id) const { return (Tag(hash) << bits_) | (id + 1); }

  // Position of `key`'s slot, or of the empty slot that ends its probe path.
  // REQUIRES: bits_ > 0.
  uint32_t Probe(Key key, uint64_t hash) const {
    const uint32_t mask = (1u << bits_) - 1;
    const uint32_t tag = Tag(hash);
    for (uint32_t pos = Home(hash);; pos = (pos + 1) & mask) {
      const uint32_t slot = slots_[pos];
      if (slot == 0) return pos;
      if ((slot >> bits_) == tag && KeyOf(row(IdOf(slot))) == key) return pos;
    }
  }

  // Backward-shift deletion: moves later members of the cluster into the hole
  // when the hole lies on their probe path.
  void DeleteSlot(uint32_t hole) {
    const uint32_t mask = (1u << bits_) - 1;
    for (uint32_t j = (hole + 1) & mask; slots_[j] != 0; j = (j + 1) & mask) {
      const uint32_t home = Home(HashKey(KeyOf(row(IdOf(slots_[j])))));
      if (((j - home) & mask) >= ((j - hole) & mask)) {
        slots_[hole] = slots_[j];
        hole = j;
      }
    }
    slots_[hole] = 0;
  }

  // Rebuilds the index with 2^bits slots from the rows (read in arena order).
  void Rehash(int bits) {
    bits_ = bits;
    slots_.reset(new uint32_t[size_t{1} << bits]());
    const uint32_t mask = (1u << bits) - 1;
    for (uint32_t id = 0; id < size(); ++id) {
      const uint64_t hash = HashKey(KeyOf(row(id)));
      uint32_t pos = Home(hash);
      while (slots_[pos] != 0) pos = (pos + 1) & mask;
      slots_[pos] = Slot(hash, id);
    }
  }

  size_t row_bytes_ = 0;
  int stripe_bits_ = 0;
  int bits_ = 0;  // log2 of the slot count; 0 until the first insert.
  std::unique_ptr<uint32_t[]> slots_;
  RowArena arena_;
};

int StripeBits(int num_stripes) {
  const int clamped = std::clamp(num_stripes, 1, 1 << kMaxStripeBits);
  return static_cast<int>(std::bit_width(static_cast<unsigned>(clamped - 1)));
}

uint32_t ClampUnixSeconds(int64_t now) {
  return static_cast<uint32_t>(
      std::clamp<int64_t>(now, 0, std::numeric_limits<uint32_t>::max()));
}

}  // namespace

// Cache-line aligned so that neighbouring stripes' locks do not share a line.
struct alignas(64) EmbeddingTable::Stripe {
  mutable Mutex mu;
  RowStore store ABSL_GUARDED_BY(mu);
  // Counts of keys without a row; null unless admission is on.
  std::unique_ptr<CountMinSketch> sketch ABSL_GUARDED_BY(mu);
  // Keys whose rows were marked dirty since the last Capture (each once per
  // marking; a key may have lost its row since).
  std::vector<Key> dirty ABSL_GUARDED_BY(mu);
};

// Per-thread buffers of the batch calls, reused across calls.
struct EmbeddingTable::Scratch {
  std::vector<uint64_t> hashes;        // By batch position.
  std::vector<uint32_t> order;         // Batch positions grouped by stripe.
  std::vector<uint32_t> group_begin;   // order[group_begin[s], group_begin[s+1]) = stripe s.
  std::vector<std::byte*> rows;        // By position in `order` (PushPull).
  std::vector<uint32_t> missing;       // Batch positions without a row (Pull).

  static Scratch& Local() {
    thread_local Scratch scratch;
    return scratch;
  }
  // Frees what one huge batch left behind.
  void Trim() {
    if (order.capacity() > kMaxKeptScratch) *this = Scratch();
  }
};

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
          evicted_max_rows_.load(std::memory_order_relaxed)};
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
