#include "server/count_min_sketch.h"

#include <algorithm>
#include <bit>
#include <limits>

#include "common/sharding.h"

namespace tessera::server {
namespace {

int ClampDepth(int depth) { return std::clamp(depth, 1, 8); }

uint32_t WidthFor(size_t memory_bytes, int depth) {
  const size_t per_row = memory_bytes / (static_cast<size_t>(depth) * sizeof(uint32_t));
  const size_t width = std::bit_floor(std::max<size_t>(per_row, 16));
  return static_cast<uint32_t>(std::min<size_t>(width, size_t{1} << 30));
}

}  // namespace

CountMinSketch::CountMinSketch(const Options& options)
    : depth_(ClampDepth(options.depth)),
      width_(WidthFor(options.memory_bytes, depth_)),
      counters_(new uint32_t[size_t{width_} * depth_]()) {
  for (int r = 0; r < kMaxDepth; ++r) {
    seeds_[r] = Mix64(options.seed + 0x9e3779b97f4a7c15ULL * static_cast<uint64_t>(r + 1));
  }
}

void CountMinSketch::Positions(Key key, size_t* pos) const {
  for (int r = 0; r < depth_; ++r) {
    const uint64_t h = Mix64(key ^ seeds_[r]);
    pos[r] = size_t{static_cast<uint32_t>(r)} * width_ + (h & (width_ - 1));
  }
}

uint32_t CountMinSketch::Add(Key key) {
  size_t pos[kMaxDepth];
  Positions(key, pos);
  uint32_t min = std::numeric_limits<uint32_t>::max();
  for (int r = 0; r < depth_; ++r) min = std::min(min, counters_[pos[r]]);
  if (min == std::numeric_limits<uint32_t>::max()) return min;  // Saturated.
  const uint32_t next = min + 1;
  // Conservative update: no counter needs to exceed the new estimate.
  for (int r = 0; r < depth_; ++r) counters_[pos[r]] = std::max(counters_[pos[r]], next);
  return next;
}

uint32_t CountMinSketch::Estimate(Key key) const {
  size_t pos[kMaxDepth];
  Positions(key, pos);
  uint32_t min = std::numeric_limits<uint32_t>::max();
  for (int r = 0; r < depth_; ++r) min = std::min(min, counters_[pos[r]]);
  return min;
}

}  // namespace tessera::server
