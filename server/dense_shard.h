// The part of a dense table (a float array of `size` elements, e.g. the
// weights of the worker's MLP) that one server owns: a list of ranges
// [begin, end) taken from the shard map (ShardMap::DenseRangesOf). Each owned
// range holds its values, the optimizer state of every element and an update
// counter (adam's step, shared by the range).
//
// Element i's initial value is InitializeSlice(initializer, id, kDenseKey, i),
// a pure function of (seed, table, i): it does not depend on how the table is
// split between servers.
//
// Thread safety: thread-safe; one mutex per owned range, so pushes to
// different ranges run in parallel.
// Ownership: the Optimizer is borrowed and must remain live while the shard
// exists.
//
// Example:
//   TESSERA_ASSIGN_OR_RETURN(std::unique_ptr<DenseShard> shard,
//       DenseShard::Create({.id = 1, .size = n, .ranges = map.DenseRangesOf(rank, n),
//                           .optimizer = adam.get(), .initializer = config.initializer}));
//   TESSERA_RETURN_IF_ERROR(shard->Push(range.begin, grads));
//   TESSERA_RETURN_IF_ERROR(shard->Pull(range.begin, range.end, out));
#ifndef TESSERA_SERVER_DENSE_SHARD_H_
#define TESSERA_SERVER_DENSE_SHARD_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <vector>

#include "common/sharding.h"
#include "common/status.h"
#include "common/table_config.h"
#include "common/types.h"
#include "server/optimizer/optimizer.h"

namespace tessera::server {

class DenseShard {
 public:
  // The key under which dense elements are initialized (index = element).
  static constexpr Key kDenseKey = 0;

  struct Options {
    TableId id = 0;
    uint64_t size = 0;  // Elements of the whole dense table.
    // Owned ranges; DenseRange::server is ignored. Any order; must be
    // non-empty, disjoint and inside [0, size).
    std::vector<DenseRange> ranges;
    // Borrowed; must remain live while the shard exists.
    const Optimizer* optimizer = nullptr;
    InitializerConfig initializer;
  };

  // InvalidArgument if the ranges are empty, overlap or leave [0, size), or
  // if optimizer is null.
  static StatusOr<std::unique_ptr<DenseShard>> Create(const Options& options);

  ~DenseShard();
  DenseShard(const DenseShard&) = delete;
  DenseShard& operator=(const DenseShard&) = delete;

  // Copies elements [begin, end) into `out`. OutOfRange unless [begin, end)
  // lies inside one owned range; InvalidArgument if begin > end or
  // out.size() != end - begin. An empty range is OK.
  Status Pull(uint64_t begin, uint64_t end, std::span<float> out) const;

  // Applies `grads` to elements [begin, begin + grads.size()) and counts one
  // update of their range. OutOfRange unless they lie inside one owned range.
  Status Push(uint64_t begin, std::span<const float> grads);

  // Read-only view of one owned range, valid only inside the ForEachRange
  // callback: its values, its optimizer state (planar: k arrays of
  // end - begin floats) and its update counter.
  struct RangeView {
    uint64_t begin;
    uint64_t end;
    uint32_t step;
    std::span<const float> values;
    std::span<const float> state;
  };
  // Calls `fn` on every owned range in begin order, holding that range's
  // lock, for snapshots. `fn` must not call into this shard.
  void ForEachRange(const std::function<void(const RangeView&)>& fn) const;

  // Restores elements [begin, end) of the table from a snapshot: the part
  // that overlaps this shard's ranges takes `values`, the planar `state`
  // (k arrays of end - begin floats; empty keeps the current state) and
  // `step`. Parts outside the owned ranges are ignored, so a snapshot saved
  // with another split restores anywhere. InvalidArgument for sizes that do
  // not match or a range outside the table.
  Status RestoreRange(uint64_t begin, uint64_t end, uint32_t step, std::span<const float> values,
                      std::span<const float> state);

  TableId id() const { return id_; }
  uint64_t size() const { return size_; }
  // The owned ranges, sorted by begin.
  const std::vector<DenseRange>& ranges() const { return ranges_; }
  // Elements owned, summed over the ranges.
  uint64_t num_elements() const;
  // Heap bytes of values and state.
  size_t memory_bytes() const;

 private:
  struct Range;

  DenseShard(const Options& options, std::vector<DenseRange> sorted);
  // The range holding [begin, end), or nullptr. REQUIRES: begin < end.
  Range* Find(uint64_t begin, uint64_t end) const;

  const TableId id_;
  const uint64_t size_;
  const Optimizer* const optimizer_;
  const std::vector<DenseRange> ranges_;
  // ranges_[i]'s data; the unique_ptrs never change after construction.
  std::vector<std::unique_ptr<Range>> data_;
};

}  // namespace tessera::server

#endif  // TESSERA_SERVER_DENSE_SHARD_H_
