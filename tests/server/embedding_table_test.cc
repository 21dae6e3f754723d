#include "server/embedding_table.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <limits>
#include <map>
#include <memory>
#include <numeric>
#include <random>
#include <thread>
#include <vector>

#include "server/initializer.h"
#include "server/optimizer/optimizer.h"
#include "tests/testing/status_matchers.h"

namespace tessera::server {
namespace {

using ::testing::ElementsAreArray;
using ::testing::FloatNear;

constexpr int64_t kNow = 1'700'000'000;

std::unique_ptr<Optimizer> MakeOptimizer(OptimizerType type, float lr = 0.1f) {
  OptimizerConfig c;
  c.type = type;
  c.learning_rate = lr;
  auto opt = NewOptimizer(c);
  EXPECT_TRUE(opt.ok()) << opt.status();
  return std::move(opt).value();
}

InitializerConfig Uniform(uint64_t seed = 1) {
  InitializerConfig c;
  c.type = InitializerType::kUniform;
  c.scale = 0.5f;
  c.seed = seed;
  return c;
}

InitializerConfig Zeros() {
  InitializerConfig c;
  c.type = InitializerType::kZeros;
  return c;
}

std::vector<float> Initial(const EmbeddingTable::Options& o, Key key) {
  std::vector<float> v(o.dim);
  InitializeRow(o.initializer, o.id, key, v);
  return v;
}

// The table's behaviour must not depend on the stripe count (leveldb's
// ChangeOptions idea): each test runs with 1, 4, 64 and 1024 stripes.
class EmbeddingTableTest : public ::testing::TestWithParam<int> {
 protected:
  EmbeddingTable::Options Opts(uint32_t dim, const Optimizer* opt,
                               InitializerConfig init = Uniform()) const {
    return {.id = 7, .dim = dim, .optimizer = opt, .initializer = init, .num_stripes = GetParam()};
  }
};

TEST_P(EmbeddingTableTest, LookupOfMissingKeyRunsInitializerAndInsertsNothing) {
  auto sgd = MakeOptimizer(OptimizerType::kSgd);
  const auto opts = Opts(5, sgd.get());
  EmbeddingTable table(opts);
  const size_t empty_bytes = table.memory_bytes();
  const std::vector<Key> keys = {0, 42, std::numeric_limits<Key>::max(), 42};
  std::vector<float> out(keys.size() * 5);
  table.Pull(keys, out);
  for (size_t i = 0; i < keys.size(); ++i) {
    EXPECT_THAT(std::vector<float>(out.begin() + i * 5, out.begin() + (i + 1) * 5),
                ElementsAreArray(Initial(opts, keys[i])));
  }
  EXPECT_EQ(table.num_rows(), 0u);
  EXPECT_EQ(table.memory_bytes(), empty_bytes);
}

TEST_P(EmbeddingTableTest, PushCreatesRowFromInitializerThenAppliesOptimizer) {
  auto sgd = MakeOptimizer(OptimizerType::kSgd, 0.5f);
  const auto opts = Opts(3, sgd.get());
  EmbeddingTable table(opts);
  const std::vector<Key> keys = {9, 10};
  const std::vector<float> grads = {1, 2, 3, -1, -2, -3};
  table.Push(keys, grads, kNow);
  EXPECT_EQ(table.num_rows(), 2u);
  std::vector<float> out(6);
  table.Pull(keys, out);
  for (size_t k = 0; k < 2; ++k) {
    const std::vector<float> init = Initial(opts, keys[k]);
    for (size_t i = 0; i < 3; ++i) {
      EXPECT_FLOAT_EQ(out[k * 3 + i], init[i] - 0.5f * grads[k * 3 + i]);
    }
  }
}

TEST_P(EmbeddingTableTest, PullCountsKeysAndMissesForTheMissRatio) {
  auto sgd = MakeOptimizer(OptimizerType::kSgd);
  EmbeddingTable table(Opts(2, sgd.get()));
  const std::vector<Key> pushed = {1, 2};
  table.Push(pushed, std::vector<float>(4, 1.0f), kNow);
  const std::vector<Key> keys = {1, 3, 2, 3, 4};  // 3 twice: each occurrence counts
  std::vector<float> out(keys.size() * 2);
  table.Pull(keys, out);
  EmbeddingTable::Stats stats = table.stats();
  EXPECT_EQ(stats.keys_pulled, 5u);
  EXPECT_EQ(stats.pull_misses, 3u);
  std::vector<float> hits(4);
  table.Pull(pushed, hits);  // all hits
  stats = table.stats();
  EXPECT_EQ(stats.keys_pulled, 7u);
  EXPECT_EQ(stats.pull_misses, 3u);
}

TEST_P(EmbeddingTableTest, RepeatedKeysApplyEachGradientInOrderWithRowSteps) {
  // Adam's bias correction depends on the row's step, so the order and the
  // step numbering are both visible in the result.
  OptimizerConfig config;
  config.type = OptimizerType::kAdam;
  ASSERT_OK_AND_ASSIGN(auto adam, NewOptimizer(config));
  const auto opts = Opts(4, adam.get());
  EmbeddingTable table(opts);
  const std::vector<Key> keys = {5, 6, 5, 5};
  std::vector<float> grads(16);
  std::iota(grads.begin(), grads.end(), -8.0f);
  table.Push(keys, grads, kNow);
  table.Push(std::vector<Key>{5}, std::vector<float>(4, 0.5f), kNow);

  std::vector<float> value = Initial(opts, 5), state(8);
  adam->InitState(state);
  uint32_t step = 0;
  for (size_t k : {0, 2, 3}) {
    adam->Update(value, state, std::span<const float>(grads).subspan(k * 4, 4), ++step);
  }
  adam->Update(value, state, std::vector<float>(4, 0.5f), ++step);
  std::vector<float> out(4);
  table.Pull(std::vector<Key>{5}, out);
  EXPECT_THAT(out, ElementsAreArray(value));
}

TEST_P(EmbeddingTableTest, PushPullReturnsValuesAfterAllGradients) {
  auto sgd = MakeOptimizer(OptimizerType::kSgd, 1.0f);
  const auto opts = Opts(2, sgd.get(), Zeros());
  EmbeddingTable table(opts);
  const std::vector<Key> keys = {1, 2, 1};
  const std::vector<float> grads = {1, 1, 2, 2, 3, 3};
  std::vector<float> out(6);
  table.PushPull(keys, grads, out, kNow);
  EXPECT_THAT(out, ElementsAreArray({-4.0f, -4.0f, -2.0f, -2.0f, -4.0f, -4.0f}));
  std::vector<float> pulled(6);
  table.Pull(keys, pulled);
  EXPECT_EQ(pulled, out);
}

TEST_P(EmbeddingTableTest, ManyRowsGrowAndStayFindable) {
  auto sgd = MakeOptimizer(OptimizerType::kSgd, 1.0f);
  const auto opts = Opts(1, sgd.get(), Zeros());
  EmbeddingTable table(opts);
  constexpr size_t kRows = 1'000'000;
  constexpr size_t kBatch = 4096;
  std::vector<Key> keys(kBatch);
  std::vector<float> grads(kBatch), out(kBatch);
  // Keys are spread (multiplied by an odd constant) but distinct; grad = -key.
  auto key_of = [](size_t i) { return static_cast<Key>(i) * 0x9E3779B97F4A7C15ULL; };
  for (size_t begin = 0; begin < kRows; begin += kBatch) {
    for (size_t i = 0; i < kBatch; ++i) {
      keys[i] = key_of(begin + i);
      grads[i] = -static_cast<float>(begin + i);
    }
    table.Push(keys, grads, kNow);
  }
  EXPECT_EQ(table.num_rows(), (kRows + kBatch - 1) / kBatch * kBatch);
  for (size_t begin = 0; begin < kRows; begin += kBatch) {
    for (size_t i = 0; i < kBatch; ++i) keys[i] = key_of(begin + i);
    table.Pull(keys, out);
    for (size_t i = 0; i < kBatch; ++i) {
      ASSERT_EQ(out[i], static_cast<float>(begin + i)) << begin + i;
    }
  }
  // Memory: the arena plus at most ~16 bytes of index and slack per row
  // (4-byte slots at load >= 2/5 -> <= 10 bytes; chunk tails are small).
  const size_t rows = table.num_rows();
  EXPECT_GE(table.memory_bytes(), rows * table.bytes_per_row());
  EXPECT_LE(table.memory_bytes(), rows * (table.bytes_per_row() + 16) + (GetParam() << 17));
}

TEST_P(EmbeddingTableTest, EraseRemovesRowsAndKeepsTheOthers) {
  auto sgd = MakeOptimizer(OptimizerType::kSgd, 1.0f);
  const auto opts = Opts(2, sgd.get());
  EmbeddingTable table(opts);
  constexpr Key kKeys = 5000;
  std::vector<Key> keys(kKeys);
  std::iota(keys.begin(), keys.end(), 0);
  std::vector<float> grads(kKeys * 2, 1.0f);
  table.Push(keys, grads, kNow);
  for (Key k = 0; k < kKeys; k += 2) EXPECT_TRUE(table.Erase(k)) << k;
  EXPECT_FALSE(table.Erase(0));
  EXPECT_FALSE(table.Erase(kKeys + 1));
  EXPECT_EQ(table.num_rows(), kKeys / 2);

  std::vector<float> out(kKeys * 2);
  table.Pull(keys, out);
  for (Key k = 0; k < kKeys; ++k) {
    std::vector<float> want = Initial(opts, k);
    if (k % 2 == 1) {
      for (float& x : want) x -= 1.0f;
    }
    ASSERT_THAT(std::vector<float>(out.begin() + k * 2, out.begin() + k * 2 + 2),
                ElementsAreArray(want))
        << k;
  }
  // An erased key comes back as a fresh row.
  table.Push(std::vector<Key>{0}, std::vector<float>{1.0f, 1.0f}, kNow);
  int visits = 0;
  table.ForEachRow([&](const EmbeddingTable::RowView& row) {
    if (row.key() == 0) {
      ++visits;
      EXPECT_EQ(row.update_count(), 1u);
    }
  });
  EXPECT_EQ(visits, 1);
  // Erasing everything frees most of the arena.
  const size_t full_bytes = table.memory_bytes();
  for (Key k = 0; k < kKeys; ++k) table.Erase(k);
  EXPECT_EQ(table.num_rows(), 0u);
  EXPECT_LT(table.memory_bytes(), full_bytes);
}

TEST_P(EmbeddingTableTest, ForEachRowVisitsEveryRowOnceWithItsMetadata) {
  auto adagrad = MakeOptimizer(OptimizerType::kAdagrad);
  const auto opts = Opts(3, adagrad.get());
  EmbeddingTable table(opts);
  std::map<Key, uint32_t> pushes;
  std::mt19937_64 rng(3);
  for (int batch = 0; batch < 50; ++batch) {
    std::vector<Key> keys(20);
    for (Key& k : keys) {
      k = rng() % 300;
      ++pushes[k];
    }
    table.Push(keys, std::vector<float>(keys.size() * 3, 0.25f), kNow + batch);
  }
  std::map<Key, uint32_t> seen;
  table.ForEachRow([&](const EmbeddingTable::RowView& row) {
    EXPECT_TRUE(seen.emplace(row.key(), row.update_count()).second) << "twice: " << row.key();
    EXPECT_EQ(row.value().size(), 3u);
    EXPECT_EQ(row.state().size(), 3u);
    // 40: header + 6 floats, already 8-aligned.
    EXPECT_EQ(table.bytes_per_row(), sizeof(EmbeddingTable::RowHeader) + 6 * sizeof(float));
    EXPECT_GE(row.last_update_unix_s(), static_cast<uint32_t>(kNow));
    // Adagrad accumulator: G0 + n * 0.25^2.
    EXPECT_THAT(row.state()[0], FloatNear(0.1f + row.update_count() * 0.0625f, 1e-5));
  });
  EXPECT_EQ(seen, pushes);
  EXPECT_EQ(table.num_rows(), pushes.size());
}

TEST_P(EmbeddingTableTest, TimestampsAreClampedToUnsigned32) {
  auto sgd = MakeOptimizer(OptimizerType::kSgd);
  EmbeddingTable table(Opts(1, sgd.get()));
  table.Push(std::vector<Key>{1}, std::vector<float>{0}, -5);
  table.Push(std::vector<Key>{2}, std::vector<float>{0}, int64_t{1} << 40);
  table.ForEachRow([](const EmbeddingTable::RowView& row) {
    EXPECT_EQ(row.last_update_unix_s(),
              row.key() == 1 ? 0u : std::numeric_limits<uint32_t>::max());
  });
}

TEST_P(EmbeddingTableTest, ConcurrentPushesToOverlappingKeysLoseNoUpdate) {
  // SGD with lr 1 and gradient 1 from zeros: a row's value is exactly minus
  // the number of gradients it received, whatever the interleaving.
  auto sgd = MakeOptimizer(OptimizerType::kSgd, 1.0f);
  const auto opts = Opts(2, sgd.get(), Zeros());
  EmbeddingTable table(opts);
  constexpr int kThreads = 8;
  constexpr int kBatches = 200;
  constexpr Key kKeySpace = 500;
  std::vector<std::vector<uint32_t>> counts(kThreads, std::vector<uint32_t>(kKeySpace));
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(t);
      std::vector<Key> keys(64);
      const std::vector<float> grads(keys.size() * 2, 1.0f);
      std::vector<float> out(keys.size() * 2);
      for (int b = 0; b < kBatches; ++b) {
        for (Key& k : keys) {
          k = rng() % kKeySpace;
          ++counts[t][k];
        }
        if (b % 3 == 0) {
          table.PushPull(keys, grads, out, kNow);
        } else {
          table.Push(keys, grads, kNow);
        }
        table.Pull(keys, out);  // Readers race with writers too.
      }
    });
  }
  for (auto& th : threads) th.join();
  std::vector<Key> keys(kKeySpace);
  std::iota(keys.begin(), keys.end(), 0);
  std::vector<float> out(kKeySpace * 2);
  table.Pull(keys, out);
  for (Key k = 0; k < kKeySpace; ++k) {
    uint32_t total = 0;
    for (const auto& c : counts) total += c[k];
    ASSERT_EQ(out[k * 2], -static_cast<float>(total)) << k;
    ASSERT_EQ(out[k * 2 + 1], -static_cast<float>(total)) << k;
  }
}

TEST_P(EmbeddingTableTest, HugeRowsUseOneRowChunks) {
  OptimizerConfig config;
  config.type = OptimizerType::kAdam;
  ASSERT_OK_AND_ASSIGN(auto adam, NewOptimizer(config));
  const auto opts = Opts(4096, adam.get());
  EmbeddingTable table(opts);
  EXPECT_EQ(table.bytes_per_row(), 16u + 4096 * 3 * 4);
  std::vector<Key> keys(20);
  std::iota(keys.begin(), keys.end(), 100);
  table.Push(keys, std::vector<float>(keys.size() * 4096, 0.0f), kNow);
  EXPECT_TRUE(table.Erase(105));
  std::vector<float> out(keys.size() * 4096);
  table.Pull(keys, out);
  for (size_t i = 0; i < keys.size(); ++i) {
    // Zero gradients leave Adam's weights unchanged.
    ASSERT_TRUE(std::equal(out.begin() + i * 4096, out.begin() + (i + 1) * 4096,
                           Initial(opts, keys[i]).begin()))
        << keys[i];
  }
  EXPECT_EQ(table.num_rows(), 19u);
}

INSTANTIATE_TEST_SUITE_P(Stripes, EmbeddingTableTest, ::testing::Values(1, 4, 64, 1024),
                         [](const auto& info) { return "Stripes" + std::to_string(info.param); });

TEST(EmbeddingTableOptionsTest, RowsArePaddedToTheHeaderAlignment) {
  auto sgd = MakeOptimizer(OptimizerType::kSgd);
  EmbeddingTable::Options options;
  options.optimizer = sgd.get();
  options.dim = 3;  // 16 + 12 bytes -> 32
  EXPECT_EQ(EmbeddingTable(options).bytes_per_row(), 32u);
  options.dim = 4;  // 16 + 16 bytes
  EXPECT_EQ(EmbeddingTable(options).bytes_per_row(), 32u);
}

TEST(EmbeddingTableOptionsTest, StripesRoundUpToPowersOfTwoAndClamp) {
  auto sgd = MakeOptimizer(OptimizerType::kSgd);
  auto stripes = [&](int n) {
    EmbeddingTable::Options options;
    options.optimizer = sgd.get();
    options.num_stripes = n;
    return EmbeddingTable(options).num_stripes();
  };
  EXPECT_EQ(stripes(0), 1);
  EXPECT_EQ(stripes(1), 1);
  EXPECT_EQ(stripes(3), 4);
  EXPECT_EQ(stripes(64), 64);
  EXPECT_EQ(stripes(100000), 1024);
}

}  // namespace
}  // namespace tessera::server
