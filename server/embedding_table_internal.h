// Internals of EmbeddingTable shared by its two source files
// (embedding_table.cc: the row store and the batch hot path;
// embedding_table_changes.cc: change tracking, replication copies and
// eviction). Include only from those files.
//
// A RowStore is an open-addressing index plus a chunked row arena (in this
// header so that the hot path inlines). Index slots are 4 bytes:
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
#ifndef TESSERA_SERVER_EMBEDDING_TABLE_INTERNAL_H_
#define TESSERA_SERVER_EMBEDDING_TABLE_INTERNAL_H_

#include <algorithm>
#include <bit>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <vector>

#include "common/logging.h"
#include "common/mutex.h"
#include "common/sharding.h"
#include "server/count_min_sketch.h"
#include "server/embedding_table.h"

namespace tessera::server {
namespace embedding_table_internal {

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

[[noreturn]] inline void Die(const char* what) {
  TESSERA_LOG(kError) << "EmbeddingTable: " << what;
  std::abort();
}

enum class Intent { kRead, kWrite };

// Prefetches every cache line of [p, p + bytes). REQUIRES: bytes > 0.
inline void PrefetchBytes(const std::byte* p, size_t bytes, Intent intent) {
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

inline EmbeddingTable::RowHeader* Header(std::byte* row) {
  return reinterpret_cast<EmbeddingTable::RowHeader*>(row);
}
inline Key KeyOf(const std::byte* row) {
  return reinterpret_cast<const EmbeddingTable::RowHeader*>(row)->key;
}
inline float* Floats(std::byte* row) {
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

inline int StripeBits(int num_stripes) {
  const int clamped = std::clamp(num_stripes, 1, 1 << kMaxStripeBits);
  return static_cast<int>(std::bit_width(static_cast<unsigned>(clamped - 1)));
}

inline uint32_t ClampUnixSeconds(int64_t now) {
  return static_cast<uint32_t>(
      std::clamp<int64_t>(now, 0, std::numeric_limits<uint32_t>::max()));
}

}  // namespace embedding_table_internal

using namespace embedding_table_internal;  // NOLINT: this header is included only by embedding_table*.cc

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

}  // namespace tessera::server

#endif  // TESSERA_SERVER_EMBEDDING_TABLE_INTERNAL_H_
