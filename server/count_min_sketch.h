// A count-min sketch with conservative update: approximate occurrence counts
// of u64 keys in fixed memory, used by EmbeddingTable for feature admission.
//
// `depth` rows of `width` uint32 counters; key k maps to one counter per row
// through seeded hashes. Add() raises only the counters that are below the
// new estimate (conservative update, Estan & Varghese), which keeps every
// guarantee of the plain sketch and overestimates less:
//   - Estimate(k) >= true count of k (never underestimates; counters
//     saturate at 2^32 - 1);
//   - Estimate(k) <= true count + (e / width) * total adds, with probability
//     >= 1 - e^-depth per key over the choice of seed.
// The seed fixes the hashes, so a run is reproducible.
//
// Thread safety: thread-compatible (EmbeddingTable keeps one sketch per
// stripe, under that stripe's lock).
//
// Example:
//   CountMinSketch sketch({.memory_bytes = 64 << 10, .depth = 4, .seed = 7});
//   if (sketch.Add(key) >= min_count) Admit(key);
#ifndef TESSERA_SERVER_COUNT_MIN_SKETCH_H_
#define TESSERA_SERVER_COUNT_MIN_SKETCH_H_

#include <cstddef>
#include <cstdint>
#include <memory>

#include "common/types.h"

namespace tessera::server {

class CountMinSketch {
 public:
  struct Options {
    // Budget for the counters: width is the largest power of two with
    // depth * width * 4 <= memory_bytes, and at least 16.
    size_t memory_bytes = 64 << 10;
    // Hash rows, clamped to [1, 8]: the failure probability is e^-depth.
    int depth = 4;
    uint64_t seed = 0;
  };

  explicit CountMinSketch(const Options& options);
  CountMinSketch(const CountMinSketch&) = delete;
  CountMinSketch& operator=(const CountMinSketch&) = delete;

  // Counts one occurrence of `key`; returns its new estimate.
  uint32_t Add(Key key);
  // The current estimate of `key`'s count.
  uint32_t Estimate(Key key) const;

  uint32_t width() const { return width_; }
  int depth() const { return depth_; }
  // Bytes of the counters.
  size_t memory_bytes() const { return size_t{width_} * depth_ * sizeof(uint32_t); }

 private:
  static constexpr int kMaxDepth = 8;
  // Fills pos[r] = index of `key`'s counter in row r (offset into counters_).
  void Positions(Key key, size_t* pos) const;

  const int depth_;
  const uint32_t width_;  // A power of two.
  uint64_t seeds_[kMaxDepth];
  std::unique_ptr<uint32_t[]> counters_;  // depth_ rows of width_.
};

}  // namespace tessera::server

#endif  // TESSERA_SERVER_COUNT_MIN_SKETCH_H_
