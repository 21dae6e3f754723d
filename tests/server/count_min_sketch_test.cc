#include "server/count_min_sketch.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <unordered_map>
#include <vector>

namespace tessera::server {
namespace {

TEST(CountMinSketchTest, WidthFollowsMemoryBudget) {
  CountMinSketch sketch({.memory_bytes = 64 << 10, .depth = 4, .seed = 1});
  EXPECT_EQ(sketch.depth(), 4);
  EXPECT_EQ(sketch.width(), 4096u);  // 4 rows * 4096 * 4 bytes = 64 KiB.
  EXPECT_EQ(sketch.memory_bytes(), size_t{64} << 10);
  CountMinSketch odd({.memory_bytes = 100000, .depth = 3, .seed = 1});
  EXPECT_EQ(odd.width(), 8192u);  // Largest power of two within budget.
  EXPECT_LE(odd.memory_bytes(), 100000u);
  CountMinSketch tiny({.memory_bytes = 1, .depth = 4, .seed = 1});
  EXPECT_EQ(tiny.width(), 16u);
}

TEST(CountMinSketchTest, ExactWhenFewKeys) {
  CountMinSketch sketch({.memory_bytes = 64 << 10, .depth = 4, .seed = 3});
  EXPECT_EQ(sketch.Estimate(5), 0u);
  EXPECT_EQ(sketch.Add(5), 1u);
  EXPECT_EQ(sketch.Add(5), 2u);
  EXPECT_EQ(sketch.Add(9), 1u);
  EXPECT_EQ(sketch.Estimate(5), 2u);
  EXPECT_EQ(sketch.Estimate(9), 1u);
}

// A skewed stream much larger than the sketch: estimates never fall below
// the true counts, and the share of keys overestimated by more than
// (e / width) * total stays within the bound's failure rate e^-depth.
TEST(CountMinSketchTest, NeverUnderestimatesAndOverestimatesWithinBound) {
  constexpr int kDepth = 4;
  CountMinSketch sketch({.memory_bytes = 4 << 10, .depth = kDepth, .seed = 42});  // width 256
  std::mt19937_64 rng(7);
  std::unordered_map<uint64_t, uint32_t> truth;
  constexpr int kAdds = 50000;
  for (int i = 0; i < kAdds; ++i) {
    // Roughly Zipf: small ids are frequent, the tail is long.
    const double u = std::uniform_real_distribution<double>(0.0, 1.0)(rng);
    const uint64_t key = static_cast<uint64_t>(std::pow(20000.0, u)) * 0x9e3779b97f4a7c15ULL;
    const uint32_t estimate = sketch.Add(key);
    ASSERT_GE(estimate, ++truth[key]);
  }
  const double bound = std::exp(1.0) / sketch.width() * kAdds;
  size_t over = 0;
  for (const auto& [key, count] : truth) {
    const uint32_t estimate = sketch.Estimate(key);
    ASSERT_GE(estimate, count) << key;
    if (estimate - count > bound) ++over;
  }
  EXPECT_LE(static_cast<double>(over), std::exp(-kDepth) * static_cast<double>(truth.size()))
      << over << " of " << truth.size() << " keys beyond " << bound;
}

TEST(CountMinSketchTest, SameSeedSameCountsOtherSeedOtherCollisions) {
  CountMinSketch a({.memory_bytes = 256, .depth = 2, .seed = 1});
  CountMinSketch b({.memory_bytes = 256, .depth = 2, .seed = 1});
  CountMinSketch c({.memory_bytes = 256, .depth = 2, .seed = 2});
  bool differs = false;
  for (uint64_t k = 0; k < 2000; ++k) {
    a.Add(k);
    b.Add(k);
    c.Add(k);
  }
  for (uint64_t k = 0; k < 2000; ++k) {
    EXPECT_EQ(a.Estimate(k), b.Estimate(k));
    differs |= a.Estimate(k) != c.Estimate(k);
  }
  EXPECT_TRUE(differs);
}

}  // namespace
}  // namespace tessera::server
