#include "server/dense_shard.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>
#include <numeric>
#include <thread>
#include <vector>

#include "common/sharding.h"
#include "server/initializer.h"
#include "tests/testing/status_matchers.h"

namespace tessera::server {
namespace {

using ::testing::ElementsAreArray;

std::unique_ptr<Optimizer> MakeOptimizer(OptimizerType type, float lr = 0.1f) {
  OptimizerConfig c;
  c.type = type;
  c.learning_rate = lr;
  auto opt = NewOptimizer(c);
  EXPECT_TRUE(opt.ok()) << opt.status();
  return std::move(opt).value();
}

InitializerConfig Normal() {
  InitializerConfig c;
  c.type = InitializerType::kNormal;
  c.scale = 0.1f;
  c.seed = 5;
  return c;
}

DenseShard::Options Opts(uint64_t size, std::vector<DenseRange> ranges, const Optimizer* opt,
                         InitializerConfig init = Normal()) {
  return {.id = 2, .size = size, .ranges = std::move(ranges), .optimizer = opt,
          .initializer = init};
}

std::vector<float> InitialSlice(const DenseShard::Options& o, uint64_t begin, uint64_t end) {
  std::vector<float> v(end - begin);
  InitializeSlice(o.initializer, o.id, DenseShard::kDenseKey, begin, v);
  return v;
}

TEST(DenseShardTest, CreateRejectsBadRanges) {
  auto sgd = MakeOptimizer(OptimizerType::kSgd);
  const std::vector<std::vector<DenseRange>> bad = {
      {{0, 5, 5}},                 // Empty.
      {{0, 0, 11}},                // Past size.
      {{0, 0, 6}, {0, 5, 10}},     // Overlap.
      {{0, 6, 10}, {0, 0, 7}},     // Overlap, unsorted.
  };
  for (const auto& ranges : bad) {
    EXPECT_EQ(DenseShard::Create(Opts(10, ranges, sgd.get())).status().code(),
              StatusCode::kInvalidArgument);
  }
  EXPECT_EQ(DenseShard::Create(Opts(10, {{0, 0, 10}}, nullptr)).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_OK(DenseShard::Create(Opts(10, {{0, 5, 10}, {0, 0, 5}}, sgd.get())));
}

TEST(DenseShardTest, InitialValuesDoNotDependOnTheSplit) {
  auto sgd = MakeOptimizer(OptimizerType::kSgd);
  constexpr uint64_t kSize = 1001;
  const auto whole_opts = Opts(kSize, {{0, 0, kSize}}, sgd.get());
  ASSERT_OK_AND_ASSIGN(auto whole, DenseShard::Create(whole_opts));
  std::vector<float> all(kSize);
  ASSERT_OK(whole->Pull(0, kSize, all));
  EXPECT_EQ(all, InitialSlice(whole_opts, 0, kSize));

  // The same table split over three servers by a shard map.
  const ShardMap map = ShardMap::Uniform(64, 3);
  for (int32_t server = 0; server < 3; ++server) {
    const auto ranges = map.DenseRangesOf(server, kSize);
    ASSERT_OK_AND_ASSIGN(auto part, DenseShard::Create(Opts(kSize, ranges, sgd.get())));
    for (const DenseRange& r : ranges) {
      std::vector<float> out(r.end - r.begin);
      ASSERT_OK(part->Pull(r.begin, r.end, out));
      EXPECT_TRUE(std::equal(out.begin(), out.end(), all.begin() + r.begin));
    }
  }
}

TEST(DenseShardTest, RequestsOutsideOneOwnedRangeAreOutOfRange) {
  auto sgd = MakeOptimizer(OptimizerType::kSgd);
  ASSERT_OK_AND_ASSIGN(auto shard,
                       DenseShard::Create(Opts(100, {{0, 10, 20}, {0, 20, 30}, {0, 50, 60}},
                                               sgd.get())));
  std::vector<float> buf(100);
  auto pull = [&](uint64_t b, uint64_t e) {
    return shard->Pull(b, e, std::span<float>(buf).first(e - b)).code();
  };
  auto push = [&](uint64_t b, uint64_t e) {
    return shard->Push(b, std::span<const float>(buf).first(e - b)).code();
  };
  for (auto [b, e] : std::vector<std::pair<uint64_t, uint64_t>>{
           {0, 5}, {5, 15}, {15, 25}, {25, 55}, {55, 65}, {95, 100}, {30, 31}}) {
    EXPECT_EQ(pull(b, e), StatusCode::kOutOfRange) << b << "," << e;
    EXPECT_EQ(push(b, e), StatusCode::kOutOfRange) << b << "," << e;
  }
  EXPECT_EQ(shard->Push(std::numeric_limits<uint64_t>::max() - 1, buf).code(),
            StatusCode::kOutOfRange);
  for (auto [b, e] : std::vector<std::pair<uint64_t, uint64_t>>{
           {10, 20}, {20, 30}, {12, 17}, {59, 60}, {50, 60}}) {
    EXPECT_OK(shard->Pull(b, e, std::span<float>(buf).first(e - b)));
    EXPECT_OK(shard->Push(b, std::span<const float>(buf).first(e - b)));
  }
  EXPECT_EQ(shard->Pull(12, 17, std::span<float>(buf).first(4)).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(shard->Pull(17, 12, {}).code(), StatusCode::kInvalidArgument);
  EXPECT_OK(shard->Pull(0, 0, {}));
  EXPECT_EQ(shard->num_elements(), 30u);
  EXPECT_EQ(shard->ranges().size(), 3u);
}

TEST(DenseShardTest, WholeRangePushesApplyAdamWithTheRangeStep) {
  OptimizerConfig config;
  config.type = OptimizerType::kAdam;
  ASSERT_OK_AND_ASSIGN(auto adam, NewOptimizer(config));
  const auto opts = Opts(50, {{0, 10, 40}}, adam.get());
  ASSERT_OK_AND_ASSIGN(auto shard, DenseShard::Create(opts));
  std::vector<float> value = InitialSlice(opts, 10, 40), state(60);
  adam->InitState(state);
  std::vector<float> grads(30);
  for (uint32_t step = 1; step <= 5; ++step) {
    for (size_t i = 0; i < grads.size(); ++i) grads[i] = static_cast<float>(i) - step;
    ASSERT_OK(shard->Push(10, grads));
    adam->Update(value, state, grads, step);
  }
  std::vector<float> out(30);
  ASSERT_OK(shard->Pull(10, 40, out));
  EXPECT_THAT(out, ElementsAreArray(value));
}

TEST(DenseShardTest, PartialPushesUpdateOnlyTheirSliceOfValuesAndState) {
  // Adagrad with zero gradients is the identity, so a push to [15, 25) must
  // equal a whole-range push whose other gradients are zero.
  auto adagrad = MakeOptimizer(OptimizerType::kAdagrad);
  const auto opts = Opts(40, {{0, 0, 40}}, adagrad.get());
  ASSERT_OK_AND_ASSIGN(auto partial, DenseShard::Create(opts));
  ASSERT_OK_AND_ASSIGN(auto whole, DenseShard::Create(opts));
  std::vector<float> grads(10), padded(40, 0.0f);
  for (int round = 0; round < 3; ++round) {
    for (size_t i = 0; i < 10; ++i) {
      grads[i] = 0.1f * static_cast<float>(i + round);
      padded[15 + i] = grads[i];
    }
    ASSERT_OK(partial->Push(15, grads));
    ASSERT_OK(whole->Push(0, padded));
  }
  std::vector<float> a(40), b(40);
  ASSERT_OK(partial->Pull(0, 40, a));
  ASSERT_OK(whole->Pull(0, 40, b));
  EXPECT_EQ(a, b);
  EXPECT_NE(a, InitialSlice(opts, 0, 40));
}

TEST(DenseShardTest, PartialPushesShareTheRangeStep) {
  OptimizerConfig config;
  config.type = OptimizerType::kAdam;
  ASSERT_OK_AND_ASSIGN(auto adam, NewOptimizer(config));
  const auto opts = Opts(20, {{0, 0, 20}}, adam.get());
  ASSERT_OK_AND_ASSIGN(auto shard, DenseShard::Create(opts));
  const std::vector<float> grads(5, 0.7f);
  ASSERT_OK(shard->Push(0, grads));   // step 1
  ASSERT_OK(shard->Push(10, grads));  // step 2, on fresh state
  std::vector<float> value = InitialSlice(opts, 10, 15), state(10);
  adam->InitState(state);
  adam->Update(value, state, grads, 2);
  std::vector<float> out(5);
  ASSERT_OK(shard->Pull(10, 15, out));
  EXPECT_THAT(out, ElementsAreArray(value));
}

TEST(DenseShardTest, ConcurrentPushesLoseNoUpdate) {
  auto sgd = MakeOptimizer(OptimizerType::kSgd, 1.0f);
  InitializerConfig zeros;
  zeros.type = InitializerType::kZeros;
  ASSERT_OK_AND_ASSIGN(auto shard,
                       DenseShard::Create(Opts(64, {{0, 0, 32}, {0, 32, 64}}, sgd.get(), zeros)));
  constexpr int kThreads = 6, kPushes = 500;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      const std::vector<float> ones(32, 1.0f);
      std::vector<float> out(8);
      for (int i = 0; i < kPushes; ++i) {
        EXPECT_OK(shard->Push((t + i) % 2 == 0 ? 0 : 32, ones));
        EXPECT_OK(shard->Pull(4, 12, out));
      }
    });
  }
  for (auto& th : threads) th.join();
  std::vector<float> out(64);
  ASSERT_OK(shard->Pull(0, 32, std::span<float>(out).first(32)));
  ASSERT_OK(shard->Pull(32, 64, std::span<float>(out).subspan(32)));
  for (float x : out) EXPECT_EQ(x, -static_cast<float>(kThreads * kPushes / 2));
  EXPECT_EQ(shard->memory_bytes(), 64 * sizeof(float));
}

}  // namespace
}  // namespace tessera::server

namespace tessera::server {
namespace {

// A snapshot of one split restores into another split, state and step
// included: the restored shards then train exactly like the original.
TEST(DenseShardRestoreTest, SnapshotRestoresIntoAnotherSplit) {
  OptimizerConfig config;
  config.type = OptimizerType::kAdam;
  ASSERT_OK_AND_ASSIGN(auto adam, NewOptimizer(config));
  ASSERT_OK_AND_ASSIGN(auto whole, DenseShard::Create(Opts(50, {{0, 0, 50}}, adam.get())));
  std::vector<float> grads(50);
  for (size_t i = 0; i < grads.size(); ++i) grads[i] = static_cast<float>(i % 7) - 3;
  for (int step = 0; step < 3; ++step) ASSERT_OK(whole->Push(0, grads));
  ASSERT_OK_AND_ASSIGN(auto left, DenseShard::Create(Opts(50, {{0, 0, 20}}, adam.get())));
  ASSERT_OK_AND_ASSIGN(auto right, DenseShard::Create(Opts(50, {{1, 20, 50}}, adam.get())));
  whole->ForEachRange([&](const DenseShard::RangeView& r) {
    EXPECT_OK(left->RestoreRange(r.begin, r.end, r.step, r.values, r.state));
    EXPECT_OK(right->RestoreRange(r.begin, r.end, r.step, r.values, r.state));
  });
  ASSERT_OK(whole->Push(0, grads));
  ASSERT_OK(left->Push(0, std::span<const float>(grads).first(20)));
  ASSERT_OK(right->Push(20, std::span<const float>(grads).subspan(20)));
  std::vector<float> want(50), got(50);
  ASSERT_OK(whole->Pull(0, 50, want));
  ASSERT_OK(left->Pull(0, 20, std::span<float>(got).first(20)));
  ASSERT_OK(right->Pull(20, 50, std::span<float>(got).subspan(20)));
  EXPECT_THAT(got, ElementsAreArray(want));
  const std::vector<float> two(2);
  EXPECT_EQ(left->RestoreRange(0, 3, 1, two, {}).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(left->RestoreRange(49, 51, 1, two, {}).code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace tessera::server
