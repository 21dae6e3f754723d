// The sparse parameters of one table on one server: u64 key -> row of `dim`
// floats plus the optimizer's per-row state and a small header. Rows are
// created by the first Push of a key (with admission on, by its min_count-th
// occurrence; see below); a Pull of a key that was never pushed
// returns the key's deterministic initial value without creating a row, so
// memory grows only with trained keys.
//
// Layout. Keys are spread over `num_stripes` stripes by a hash unrelated to
// the one that assigns keys to servers. Each stripe has its own mutex, an
// open-addressing index (linear probing over 4-byte slots holding a row id
// and hash tag bits) and a chunked arena of rows. A row is contiguous:
//   RowHeader {key, update_count, last_update_unix_s} | value[dim] | state[dim * k]
// (k = optimizer->state_floats_per_dim()), so a row can be copied atomically
// under its stripe lock. Arena chunks never move: growth adds a chunk and
// rebuilds only the index. Erase moves the stripe's last row into the hole,
// keeping each stripe's rows dense (row ids are not stable across Erase).
//
// Admission (Options::admission.min_count = N > 1). Each stripe holds a
// count-min sketch (server/count_min_sketch.h) of the keys without a row.
// Every occurrence of such a key in a Pull, Push or PushPull batch adds one
// to its count (a worker that pulls then pushes a key counts it twice). A
// Push occurrence whose count reaches N creates the row and applies its
// gradient; before that the gradient is dropped (counted as rejected) and
// PushPull returns the initial value. A Pull never creates a row, admitted
// or not: it returns the key's initial value, as for any missing key. Keys
// with a row are not counted any more. Counts never decay: an evicted key
// that comes back is admitted again at its first Push. With
// admission.unadmitted_zeros, keys without a row read as zeros instead of
// their initial value (a new row still starts from the initial value).
//
// Eviction (Options::eviction). Evict(now) removes, stripe by stripe, the
// rows with last_update_unix_s + ttl_s <= now (ttl_s > 0), then, if more
// than max_rows rows remain (max_rows > 0), the least recently updated rows
// until max_rows remain: a row is removed only if every kept row was updated
// at the same second or later (timestamps have whole-second resolution; ties
// go in stripe order). Rows pushed while Evict runs may be kept, so the
// bound holds when Evict returns only if no Push ran concurrently. Between
// sweeps the table may exceed max_rows. MaybeEvict(now) runs Evict at most
// once per second of `now`; the server calls it after push batches. Evicted
// keys become tombstones of the next delta (see change tracking below).
//
// Change tracking, for versions (snapshots and deltas). Off until the first
// Capture(). From then on, every row a Push/PushPull changes is marked dirty
// (a bit in RowHeader::update_count, masked everywhere it is read, and the
// key appended to its stripe's dirty list), and every key Evict or Erase
// removes is kept as a tombstone. Capture(full = false) copies the dirty rows
// and takes the tombstones since the previous Capture; Capture(true) copies
// every row. Either resets the marks, so successive captures form a chain:
// full, delta, delta, ... Each row is copied under its stripe lock
// (consistent per row: value, optimizer state and header together).
//
// Thread safety: thread-safe. Batch calls lock each stripe they touch once,
// taking the keys of that stripe in their batch order, so concurrent pushes
// to one key never lose an update. A batch is atomic per stripe, not as a
// whole.
//
// Ownership: the Optimizer is borrowed and must remain live while the table
// exists.
//
// Example:
//   EmbeddingTable table({.id = 3, .dim = 16, .optimizer = adagrad.get(),
//                         .initializer = config.initializer});
//   table.Push(keys, grads, clock->UnixSeconds());   // grads: keys.size() * 16
//   table.Pull(keys, out);                            // out:   keys.size() * 16
#ifndef TESSERA_SERVER_EMBEDDING_TABLE_H_
#define TESSERA_SERVER_EMBEDDING_TABLE_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <span>
#include <vector>

#include "common/mutex.h"
#include "common/status.h"
#include "common/table_config.h"
#include "common/types.h"
#include "server/count_min_sketch.h"
#include "server/optimizer/optimizer.h"

namespace tessera::server {

class EmbeddingTable {
 public:
  struct Options {
    TableId id = 0;  // Part of every key's initial value (see initializer.h).
    // Floats per row. REQUIRES: >= 1.
    uint32_t dim = 8;
    // Borrowed; must remain live while the table exists. REQUIRES: non-null.
    const Optimizer* optimizer = nullptr;
    InitializerConfig initializer;
    // Lock stripes; rounded up to a power of two, clamped to [1, 1024].
    // More stripes mean less lock contention but shorter per-stripe runs of a
    // batch, and the prefetching works on runs of up to 32 keys: 16 measured
    // best with batches of 1024 keys on 2 cores (64: ~10% fewer lookups/s,
    // 256: about half; bench/table_bench, 2M rows). Raise it for many more
    // concurrent pushers or much larger batches.
    int num_stripes = 16;
    // Off unless min_count > 1 (see the class comment).
    AdmissionConfig admission = {};
    // Counter memory of the admission sketches, split evenly over the
    // stripes (depth 4). 1 MiB per table: width 4096 per stripe at 16
    // stripes, so a key's count is overestimated by at most
    // e/4096 = 0.07% of its stripe's counted occurrences with probability
    // >= 98%.
    size_t admission_sketch_bytes = 1 << 20;
    uint64_t admission_seed = 0;
    EvictionConfig eviction = {};  // Off unless ttl_s or max_rows > 0.
  };

  // Monotonic totals since construction.
  struct Stats {
    uint64_t rows_admitted = 0;     // Rows created by Push/PushPull.
    uint64_t keys_rejected = 0;     // Push occurrences dropped before admission.
    uint64_t evicted_ttl = 0;       // Rows removed by Evict for ttl_s.
    uint64_t evicted_max_rows = 0;  // Rows removed by Evict for max_rows.
    uint64_t keys_pulled = 0;       // Keys read by Pull.
    uint64_t pull_misses = 0;       // Of those, keys without a row (initial value read).
  };

  // The fixed start of every row; value[dim] and state[dim * k] follow it.
  struct RowHeader {
    Key key;
    // Pushes applied to this row (saturates at kMaxUpdateCount); the top bit
    // is the change-tracking mark (see the class comment).
    uint32_t update_count;
    uint32_t last_update_unix_s;  // `now_unix_s` of the last Push.
  };
  static constexpr uint32_t kDirtyBit = 1u << 31;
  static constexpr uint32_t kMaxUpdateCount = kDirtyBit - 1;

  // Rows and tombstones copied by Capture. `rows` holds num_rows records of
  // record_bytes() each, in the row-file record layout: RowHeader (mark
  // cleared) | value[dim] | state[state_floats].
  struct Captured {
    uint32_t dim = 0;
    uint32_t state_floats = 0;
    std::vector<std::byte> rows;
    std::vector<Key> deleted;  // tombstones (empty for a full capture)
    size_t record_bytes() const { return sizeof(RowHeader) + (dim + state_floats) * sizeof(float); }
    size_t num_rows() const { return rows.size() / record_bytes(); }
  };

  // Read-only view of one row, valid only inside the ForEachRow callback.
  class RowView {
   public:
    Key key() const { return header().key; }
    uint32_t update_count() const { return header().update_count & ~kDirtyBit; }
    uint32_t last_update_unix_s() const { return header().last_update_unix_s; }
    std::span<const float> value() const { return {floats(), dim_}; }
    std::span<const float> state() const { return {floats() + dim_, state_floats_}; }

   private:
    friend class EmbeddingTable;
    RowView(const std::byte* row, size_t dim, size_t state_floats)
        : row_(row), dim_(dim), state_floats_(state_floats) {}
    const RowHeader& header() const { return *reinterpret_cast<const RowHeader*>(row_); }
    const float* floats() const { return reinterpret_cast<const float*>(row_ + sizeof(RowHeader)); }

    const std::byte* row_;
    size_t dim_;
    size_t state_floats_;
  };

  explicit EmbeddingTable(const Options& options);
  ~EmbeddingTable();
  EmbeddingTable(const EmbeddingTable&) = delete;
  EmbeddingTable& operator=(const EmbeddingTable&) = delete;

  // out[i*dim, (i+1)*dim) = value of keys[i]; a missing key yields its initial
  // value and is not inserted. REQUIRES: out.size() == keys.size() * dim.
  void Pull(std::span<const Key> keys, std::span<float> out) const;

  // Applies grads[i*dim, (i+1)*dim) to keys[i], creating missing rows
  // (initializer + optimizer InitState) first; with admission on, drops the
  // gradients of keys not admitted yet (see the class comment). A repeated key gets each of its
  // gradients, in batch order. Sets update_count and last_update_unix_s
  // (clamped to [0, 2^32-1]). REQUIRES: grads.size() == keys.size() * dim.
  void Push(std::span<const Key> keys, std::span<const float> grads, int64_t now_unix_s);

  // Push followed by Pull, each stripe's part done under one lock hold: a
  // repeated key returns its value after all of its gradients.
  // REQUIRES: grads.size() == out.size() == keys.size() * dim.
  void PushPull(std::span<const Key> keys, std::span<const float> grads, std::span<float> out,
                int64_t now_unix_s);

  // Removes the row of `key`; false if it had none. With change tracking on,
  // the key becomes a tombstone of the next delta.
  bool Erase(Key key);

  // Creates or overwrites the row of `key` (restoring a snapshot). An empty
  // `state` initializes the optimizer state. Marked as changed (for the next
  // delta) only with `mark_changed` and change tracking on.
  // InvalidArgument unless value.size() == dim() and state is empty or
  // state_floats() long.
  Status InsertRow(Key key, uint32_t update_count, uint32_t last_update_unix_s,
                   std::span<const float> value, std::span<const float> state,
                   bool mark_changed = false);
  // Replication. CopyRows appends the records (Captured layout) of the keys
  // that have a row to `records` and the other keys to `absent`; CopyAllRows
  // appends every row's record. Each row is copied under its stripe lock.
  // Change-tracking marks are neither read nor reset.
  void CopyRows(std::span<const Key> keys, std::vector<std::byte>& records,
                std::vector<Key>& absent) const;
  void CopyAllRows(std::vector<std::byte>& records) const;
  // Removes the rows whose key `doomed` selects, without tombstones (their
  // slots moved to another server, which publishes them from now on).
  // Returns the number removed. Locks one stripe at a time.
  size_t EraseIf(const std::function<bool(Key)>& doomed);
  // InsertRow for every record of `records` (Captured layout).
  // InvalidArgument if its size is not a multiple of the record size.
  Status InsertRecords(std::span<const std::byte> records, bool mark_changed);
  // Bytes of one record in the Captured layout.
  size_t record_bytes() const { return sizeof(RowHeader) + (dim_ + state_floats_) * sizeof(float); }

  // Copies every row (full) or the rows changed and keys removed since the
  // previous Capture, and starts or continues change tracking (see the class
  // comment). Locks one stripe at a time.
  Captured Capture(bool full);
  // True once Capture ran (change tracking is on).
  bool tracking() const { return tracking_.load(); }
  // The tombstones the next Capture(false) would take whose keys have no row
  // now, sorted, each once (a full replication copy carries them: rows
  // present are copied anyway).
  std::vector<Key> Tombstones() const;
  // With change tracking on, makes `keys` tombstones of the next delta
  // without touching rows: rows removed elsewhere, a dead primary's
  // evictions its promoted backup publishes (server/replica_store.h).
  void AddTombstones(std::span<const Key> keys);

  // Removes expired rows, then the oldest rows past max_rows (see the class
  // comment); returns the number removed. Locks one stripe at a time.
  // Appends the removed keys to `evicted` when given.
  size_t Evict(int64_t now_unix_s, std::vector<Key>* evicted = nullptr);
  // Evict(now) if eviction is on and no sweep ran at this second of `now`
  // or later; returns the number removed. Cheap when not due (one atomic).
  size_t MaybeEvict(int64_t now_unix_s, std::vector<Key>* evicted = nullptr);

  Stats stats() const;
  // Bytes of the admission sketches (0 when admission is off).
  size_t sketch_bytes() const;

  // Calls `fn` on every row, stripe by stripe, holding that stripe's lock
  // (shared): `fn` must not call into this table. Rows pushed concurrently
  // may or may not be visited.
  void ForEachRow(const std::function<void(const RowView&)>& fn) const;

  size_t num_rows() const;
  // Bytes of one row in the arena: header + (value + state) floats, rounded
  // up to a multiple of 8 (the header's alignment).
  size_t bytes_per_row() const { return row_bytes_; }
  // Heap bytes held: arenas (with their unused tail) + indexes + stripes.
  size_t memory_bytes() const;

  uint32_t dim() const { return dim_; }
  uint32_t state_floats() const { return state_floats_; }
  TableId id() const { return id_; }
  int num_stripes() const { return 1 << stripe_bits_; }

 private:
  struct Stripe;
  struct Scratch;
  enum class Mode { kPush, kPushPull };

  // Push (out empty) or PushPull.
  void Update(std::span<const Key> keys, std::span<const float> grads, std::span<float> out,
              int64_t now_unix_s, Mode mode);
  // Fills scratch.hashes and groups batch positions by stripe.
  void GroupByStripe(std::span<const Key> keys, Scratch& scratch) const;
  // Each locks stripe `s` once and handles the batch positions
  // scratch.order[begin, end), all in that stripe, in order.
  void PullStripe(uint32_t s, std::span<const Key> keys, std::span<float> out, Scratch& scratch,
                  uint32_t begin, uint32_t end) const;
  void UpdateStripe(uint32_t s, std::span<const Key> keys, std::span<const float> grads,
                    std::span<float> out, uint32_t now, Mode mode, Scratch& scratch,
                    uint32_t begin, uint32_t end);
  // Writes the header, initial value and optimizer state of a new row.
  void InitRow(std::byte* row, Key key) const;
  // Applies one gradient to one row.
  void ApplyGradient(std::byte* row, const float* grad, uint32_t now) const;
  uint32_t StripeOf(uint64_t hash) const;
  // Counts the keys at batch positions `positions` (all without a row) in
  // their stripes' sketches; positions of one stripe are contiguous.
  void CountMissing(std::span<const Key> keys, std::span<const uint32_t> positions,
                    const Scratch& scratch) const;
  // Removes the rows of stripe `s` that `doomed(timestamp)` selects, up to
  // `limit`; appends their keys to `evicted`. Returns the number removed.
  size_t EvictFromStripe(uint32_t s, const std::function<bool(uint32_t)>& doomed, size_t limit,
                         std::vector<Key>& evicted);
  size_t EvictOldest(size_t excess, std::vector<Key>& evicted);

  const TableId id_;
  const uint32_t dim_;
  const uint32_t state_floats_;  // dim * optimizer->state_floats_per_dim()
  const size_t row_bytes_;
  const Optimizer* const optimizer_;
  const InitializerConfig initializer_;
  const int stripe_bits_;
  const uint32_t min_count_;  // > 1 when admission is on.
  const bool missing_zeros_;  // admission on and unadmitted_zeros: rowless keys read 0
  const EvictionConfig eviction_;
  const std::unique_ptr<Stripe[]> stripes_;

  std::atomic<int64_t> next_sweep_s_{std::numeric_limits<int64_t>::min()};
  std::atomic<uint64_t> rows_admitted_{0}, keys_rejected_{0};
  std::atomic<uint64_t> evicted_ttl_{0}, evicted_max_rows_{0};
  // Counted by Pull, which is const (statistics, not table state).
  mutable std::atomic<uint64_t> keys_pulled_{0}, pull_misses_{0};
  Mutex evict_mu_;  // Serializes Evict.
  std::atomic<bool> tracking_{false};
  mutable Mutex deleted_mu_;  // Taken after evict_mu_ when both are held.
  std::vector<Key> deleted_ TESSERA_GUARDED_BY(deleted_mu_);  // Tombstones since the last Capture.
};

}  // namespace tessera::server

#endif  // TESSERA_SERVER_EMBEDDING_TABLE_H_
