// The sparse parameters of one table on one server: u64 key -> row of `dim`
// floats plus the optimizer's per-row state and a small header. Rows are
// created by the first Push of a key; a Pull of a key that was never pushed
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

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>

#include "common/table_config.h"
#include "common/types.h"
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
  };

  // The fixed start of every row; value[dim] and state[dim * k] follow it.
  struct RowHeader {
    Key key;
    uint32_t update_count;        // Pushes applied to this row (saturates).
    uint32_t last_update_unix_s;  // `now_unix_s` of the last Push.
  };

  // Read-only view of one row, valid only inside the ForEachRow callback.
  class RowView {
   public:
    Key key() const { return header().key; }
    uint32_t update_count() const { return header().update_count; }
    uint32_t last_update_unix_s() const { return header().last_update_unix_s; }
    std::span<const float> value() const { return {floats(), dim_}; }
    std::span<const float> state() const { return {floats() + dim_, state_floats_}; }
    // The row's header, value and state as stored (without the arena's
    // alignment padding), for snapshots.
    std::span<const std::byte> bytes() const {
      return {row_, sizeof(RowHeader) + (dim_ + state_floats_) * sizeof(float)};
    }

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
  // (initializer + optimizer InitState) first. A repeated key gets each of its
  // gradients, in batch order. Sets update_count and last_update_unix_s
  // (clamped to [0, 2^32-1]). REQUIRES: grads.size() == keys.size() * dim.
  void Push(std::span<const Key> keys, std::span<const float> grads, int64_t now_unix_s);

  // Push followed by Pull, each stripe's part done under one lock hold: a
  // repeated key returns its value after all of its gradients.
  // REQUIRES: grads.size() == out.size() == keys.size() * dim.
  void PushPull(std::span<const Key> keys, std::span<const float> grads, std::span<float> out,
                int64_t now_unix_s);

  // Removes the row of `key`; false if it had none.
  bool Erase(Key key);

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

  const TableId id_;
  const uint32_t dim_;
  const uint32_t state_floats_;  // dim * optimizer->state_floats_per_dim()
  const size_t row_bytes_;
  const Optimizer* const optimizer_;
  const InitializerConfig initializer_;
  const int stripe_bits_;
  const std::unique_ptr<Stripe[]> stripes_;
};

}  // namespace tessera::server

#endif  // TESSERA_SERVER_EMBEDDING_TABLE_H_
