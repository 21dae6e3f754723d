// EmbeddingTable's feature admission (min_count) and eviction (ttl_s,
// max_rows); the table itself is covered by embedding_table_test.cc.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <vector>

#include "common/clock.h"
#include "server/embedding_table.h"
#include "server/initializer.h"
#include "server/optimizer/optimizer.h"

namespace tessera::server {
namespace {

using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::FloatNear;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;
using ::testing::UnorderedElementsAreArray;

constexpr uint32_t kDim = 4;
constexpr float kLr = 0.5f;

std::unique_ptr<Optimizer> Sgd() {
  OptimizerConfig c;
  c.type = OptimizerType::kSgd;
  c.learning_rate = kLr;
  return std::move(NewOptimizer(c)).value();
}

// Runs with 1, 4 and 64 stripes: semantics must not depend on them.
class AdmissionEvictionTest : public ::testing::TestWithParam<int> {
 protected:
  EmbeddingTable::Options Opts(uint32_t min_count, EvictionConfig eviction = {}) {
    EmbeddingTable::Options o;
    o.id = 5;
    o.dim = kDim;
    o.optimizer = sgd_.get();
    o.initializer = {InitializerType::kUniform, 0.5f, 11};
    o.num_stripes = GetParam();
    o.admission.min_count = min_count;
    o.admission_sketch_bytes = 64 << 10;
    o.eviction = eviction;
    return o;
  }
  std::vector<float> Initial(const EmbeddingTable& t, Key key) {
    std::vector<float> v(kDim);
    InitializeRow({InitializerType::kUniform, 0.5f, 11}, t.id(), key, v);
    return v;
  }
  std::vector<float> PullOne(const EmbeddingTable& t, Key key) {
    std::vector<float> out(kDim);
    const Key keys[] = {key};
    t.Pull(keys, out);
    return out;
  }
  void PushOne(EmbeddingTable& t, Key key, float g = 1.0f) {
    const Key keys[] = {key};
    const std::vector<float> grads(kDim, g);
    t.Push(keys, grads, clock_.UnixSeconds());
  }
  void Advance(int seconds) { clock_.AdvanceTime(std::chrono::seconds(seconds)); }
  std::vector<Key> Keys(const EmbeddingTable& t) {
    std::vector<Key> keys;
    t.ForEachRow([&](const EmbeddingTable::RowView& r) { keys.push_back(r.key()); });
    return keys;
  }

  std::unique_ptr<Optimizer> sgd_ = Sgd();
  SimulatedClock clock_;
};

TEST_P(AdmissionEvictionTest, PullBeforeAdmissionReturnsInitialValueAndCreatesNoRow) {
  EmbeddingTable t(Opts(3));
  for (int i = 0; i < 5; ++i) EXPECT_THAT(PullOne(t, 77), ElementsAreArray(Initial(t, 77)));
  EXPECT_EQ(t.num_rows(), 0u);  // Pulls count, but never create rows.
  EXPECT_EQ(t.stats().rows_admitted, 0u);
  EXPECT_EQ(t.stats().keys_rejected, 0u);
  EXPECT_GT(t.sketch_bytes(), 0u);
  EXPECT_LE(t.sketch_bytes(), size_t{64} << 10);
}

TEST_P(AdmissionEvictionTest, UnadmittedZerosReadKeysWithoutRowsAsZeros) {
  EmbeddingTable::Options o = Opts(2);
  o.admission.unadmitted_zeros = true;
  EmbeddingTable t(o);
  const std::vector<float> zeros(kDim, 0.0f);
  EXPECT_THAT(PullOne(t, 8), ElementsAreArray(zeros));
  const Key keys[] = {8};
  const std::vector<float> grads(kDim, 1.0f);
  std::vector<float> out(kDim);
  t.PushPull(keys, grads, out, clock_.UnixSeconds());  // Pull + this push: admitted now.
  EXPECT_EQ(t.num_rows(), 1u);
  // The new row starts from the initial value, not from zeros.
  for (uint32_t d = 0; d < kDim; ++d) EXPECT_THAT(out[d], FloatNear(Initial(t, 8)[d] - kLr, 1e-6f));
  EXPECT_THAT(PullOne(t, 9), ElementsAreArray(zeros));
  // Without admission the option means nothing: initial values.
  EmbeddingTable::Options off = Opts(0);
  off.admission.unadmitted_zeros = true;
  EmbeddingTable plain(off);
  EXPECT_THAT(PullOne(plain, 8), ElementsAreArray(Initial(plain, 8)));
}

TEST_P(AdmissionEvictionTest, PushesBeforeAdmissionAreDroppedThenApply) {
  EmbeddingTable t(Opts(3));
  PushOne(t, 9);
  PushOne(t, 9);
  EXPECT_EQ(t.num_rows(), 0u);
  EXPECT_EQ(t.stats().keys_rejected, 2u);
  EXPECT_THAT(PullOne(t, 9), ElementsAreArray(Initial(t, 9)));  // 3rd occurrence: still no row.
  PushOne(t, 9);  // 4th occurrence: admitted, gradient applied once.
  ASSERT_EQ(t.num_rows(), 1u);
  const std::vector<float> init = Initial(t, 9);
  std::vector<float> v = PullOne(t, 9);
  for (uint32_t d = 0; d < kDim; ++d) EXPECT_THAT(v[d], FloatNear(init[d] - kLr, 1e-6f));
  PushOne(t, 9);  // Rows, once created, take every update.
  v = PullOne(t, 9);
  for (uint32_t d = 0; d < kDim; ++d) EXPECT_THAT(v[d], FloatNear(init[d] - 2 * kLr, 1e-6f));
  EXPECT_EQ(t.stats().rows_admitted, 1u);
  EXPECT_EQ(t.stats().keys_rejected, 2u);
}

TEST_P(AdmissionEvictionTest, PullsCountTowardAdmission) {
  EmbeddingTable t(Opts(3));
  PullOne(t, 4);
  PullOne(t, 4);
  PushOne(t, 4);  // Third occurrence.
  EXPECT_EQ(t.num_rows(), 1u);
  EXPECT_EQ(t.stats().keys_rejected, 0u);
}

TEST_P(AdmissionEvictionTest, RepeatedKeyInOneBatchCountsEachOccurrence) {
  EmbeddingTable t(Opts(2));
  const Key keys[] = {6, 6, 6};
  const std::vector<float> grads(3 * kDim, 1.0f);
  std::vector<float> out(3 * kDim);
  t.PushPull(keys, grads, out, clock_.UnixSeconds());
  // First dropped; second creates the row; both later gradients apply.
  EXPECT_EQ(t.stats().keys_rejected, 1u);
  EXPECT_EQ(t.stats().rows_admitted, 1u);
  const std::vector<float> init = Initial(t, 6);
  for (size_t i = 0; i < 3; ++i) {
    for (uint32_t d = 0; d < kDim; ++d) {
      EXPECT_THAT(out[i * kDim + d], FloatNear(init[d] - 2 * kLr, 1e-6f)) << i;
    }
  }
}

TEST_P(AdmissionEvictionTest, PushPullBeforeAdmissionReturnsInitialValue) {
  EmbeddingTable t(Opts(5));
  const Key keys[] = {1, 2};
  const std::vector<float> grads(2 * kDim, 1.0f);
  std::vector<float> out(2 * kDim);
  t.PushPull(keys, grads, out, clock_.UnixSeconds());
  EXPECT_EQ(t.num_rows(), 0u);
  EXPECT_THAT(std::vector<float>(out.begin(), out.begin() + kDim), ElementsAreArray(Initial(t, 1)));
  EXPECT_THAT(std::vector<float>(out.begin() + kDim, out.end()), ElementsAreArray(Initial(t, 2)));
  EXPECT_EQ(t.stats().keys_rejected, 2u);
}

TEST_P(AdmissionEvictionTest, MinCountOneOrZeroIsOff) {
  for (uint32_t min_count : {0u, 1u}) {
    EmbeddingTable t(Opts(min_count));
    PushOne(t, 3);
    EXPECT_EQ(t.num_rows(), 1u);
    EXPECT_EQ(t.stats().rows_admitted, 1u);
    EXPECT_EQ(t.stats().keys_rejected, 0u);
    EXPECT_EQ(t.sketch_bytes(), 0u);
  }
}

TEST_P(AdmissionEvictionTest, TtlEvictsRowsNotUpdatedForTtlSeconds) {
  EmbeddingTable t(Opts(0, {.ttl_s = 10}));
  PushOne(t, 1);
  Advance(5);
  PushOne(t, 2);
  Advance(4);
  EXPECT_EQ(t.Evict(clock_.UnixSeconds()), 0u);  // 9 s old: kept.
  PushOne(t, 3);
  Advance(1);
  EXPECT_EQ(t.Evict(clock_.UnixSeconds()), 1u);  // Key 1 is 10 s old.
  EXPECT_THAT(Keys(t), UnorderedElementsAre(2, 3));
  Advance(5);
  PushOne(t, 2);  // Refreshed: survives the sweep that takes key 3.
  Advance(5);
  EXPECT_EQ(t.Evict(clock_.UnixSeconds()), 1u);
  EXPECT_THAT(Keys(t), ElementsAre(2));
  EXPECT_EQ(t.stats().evicted_ttl, 2u);
  EXPECT_EQ(t.stats().evicted_max_rows, 0u);
  // A pull after eviction sees the initial value again.
  EXPECT_THAT(PullOne(t, 1), ElementsAreArray(Initial(t, 1)));
}

TEST_P(AdmissionEvictionTest, EvictedKeysAreTombstonesOfTheNextDeltaExactlyOnce) {
  EmbeddingTable t(Opts(0, {.ttl_s = 3}));
  EXPECT_EQ(t.Capture(/*full=*/true).num_rows(), 0u);  // Starts change tracking.
  for (Key k = 10; k < 20; ++k) PushOne(t, k);
  Advance(3);
  EXPECT_EQ(t.Evict(clock_.UnixSeconds()), 10u);
  std::vector<Key> expected(10);
  for (Key k = 10; k < 20; ++k) expected[k - 10] = k;
  EXPECT_THAT(t.Capture(false).deleted, UnorderedElementsAreArray(expected));
  EXPECT_THAT(t.Capture(false).deleted, IsEmpty());
  PushOne(t, 10);  // Comes back, then goes again: a second tombstone.
  Advance(3);
  EXPECT_EQ(t.Evict(clock_.UnixSeconds()), 1u);
  EXPECT_EQ(t.Evict(clock_.UnixSeconds()), 0u);
  EXPECT_THAT(t.Capture(false).deleted, ElementsAre(10));
  EXPECT_THAT(t.Capture(false).deleted, IsEmpty());
}

TEST_P(AdmissionEvictionTest, MaxRowsEvictsLeastRecentlyUpdatedFirst) {
  EmbeddingTable t(Opts(0, {.max_rows = 3}));
  (void)t.Capture(true);
  for (Key k = 1; k <= 5; ++k) {
    PushOne(t, k);
    Advance(1);
  }
  PushOne(t, 1);  // Now the most recent.
  EXPECT_EQ(t.Evict(clock_.UnixSeconds()), 2u);
  EXPECT_THAT(Keys(t), UnorderedElementsAre(1, 4, 5));
  EXPECT_THAT(t.Capture(false).deleted, UnorderedElementsAre(2, 3));
  EXPECT_EQ(t.stats().evicted_max_rows, 2u);
  EXPECT_EQ(t.stats().evicted_ttl, 0u);
  EXPECT_EQ(t.Evict(clock_.UnixSeconds()), 0u);  // At the bound: nothing to do.
}

TEST_P(AdmissionEvictionTest, MaxRowsKeepsExactlyTheNewestRows) {
  EmbeddingTable t(Opts(0, {.max_rows = 100}));
  for (Key k = 0; k < 1000; ++k) {
    PushOne(t, k * 7919);
    Advance(1);
  }
  EXPECT_EQ(t.Evict(clock_.UnixSeconds()), 900u);
  std::vector<Key> expected;
  for (Key k = 900; k < 1000; ++k) expected.push_back(k * 7919);
  EXPECT_THAT(Keys(t), UnorderedElementsAreArray(expected));
}

TEST_P(AdmissionEvictionTest, MaxRowsTiesWithinOneSecondStillReachTheBound) {
  EmbeddingTable t(Opts(0, {.max_rows = 10}));
  for (Key k = 0; k < 50; ++k) PushOne(t, k);  // All at the same second.
  Advance(1);
  for (Key k = 50; k < 55; ++k) PushOne(t, k);
  EXPECT_EQ(t.Evict(clock_.UnixSeconds()), 45u);
  const std::vector<Key> kept = Keys(t);
  EXPECT_EQ(kept.size(), 10u);
  for (Key k = 50; k < 55; ++k) EXPECT_NE(std::find(kept.begin(), kept.end(), k), kept.end());
}

TEST_P(AdmissionEvictionTest, TtlThenMaxRowsCountedByReason) {
  EmbeddingTable t(Opts(0, {.ttl_s = 100, .max_rows = 2}));
  (void)t.Capture(true);
  PushOne(t, 1);
  Advance(100);
  PushOne(t, 2);
  Advance(1);
  PushOne(t, 3);
  Advance(1);
  PushOne(t, 4);
  EXPECT_EQ(t.Evict(clock_.UnixSeconds()), 2u);  // 1 by ttl, then 2 by max_rows.
  EXPECT_EQ(t.stats().evicted_ttl, 1u);
  EXPECT_EQ(t.stats().evicted_max_rows, 1u);
  EXPECT_THAT(Keys(t), UnorderedElementsAre(3, 4));
  EXPECT_THAT(t.Capture(false).deleted, ElementsAre(1, 2));
}

TEST_P(AdmissionEvictionTest, MaybeEvictSweepsAtMostOncePerSecond) {
  EmbeddingTable off(Opts(0));
  PushOne(off, 1);
  EXPECT_EQ(off.MaybeEvict(clock_.UnixSeconds() + 1000), 0u);
  EXPECT_EQ(off.num_rows(), 1u);

  EmbeddingTable t(Opts(0, {.max_rows = 1}));
  PushOne(t, 1);
  Advance(1);
  PushOne(t, 2);
  EXPECT_EQ(t.MaybeEvict(clock_.UnixSeconds()), 1u);
  PushOne(t, 3);
  EXPECT_EQ(t.MaybeEvict(clock_.UnixSeconds()), 0u);  // Same second: not due.
  EXPECT_EQ(t.num_rows(), 2u);
  Advance(1);
  EXPECT_EQ(t.MaybeEvict(clock_.UnixSeconds()), 1u);
  EXPECT_EQ(t.num_rows(), 1u);
}

TEST_P(AdmissionEvictionTest, AdmissionAndEvictionTogether) {
  EmbeddingTable t(Opts(2, {.ttl_s = 5}));
  PushOne(t, 8);
  PushOne(t, 8);
  ASSERT_EQ(t.num_rows(), 1u);
  Advance(5);
  EXPECT_EQ(t.Evict(clock_.UnixSeconds()), 1u);
  // Counts do not decay: a returning key is admitted at its first push.
  PushOne(t, 8);
  EXPECT_EQ(t.num_rows(), 1u);
  EXPECT_EQ(t.stats().rows_admitted, 2u);
  EXPECT_EQ(t.stats().keys_rejected, 1u);
}

INSTANTIATE_TEST_SUITE_P(Stripes, AdmissionEvictionTest, ::testing::Values(1, 4, 64));

}  // namespace
}  // namespace tessera::server
