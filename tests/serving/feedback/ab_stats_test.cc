// A/B statistics (feedback/ab_stats.h) against values computed by hand
// (the formulas in the header, evaluated in Python to 12 digits).
#include "serving/feedback/ab_stats.h"

#include <gtest/gtest.h>

namespace tessera::feedback {
namespace {

TEST(AbStatsTest, WilsonIntervalMatchesHandComputedValues) {
  // 30 of 1000: p = 0.03, center (0.03 + 1.920729/1000) / 1.003841459.
  const CtrInterval ci = WilsonInterval(30, 1000);
  EXPECT_DOUBLE_EQ(ci.ctr, 0.03);
  EXPECT_NEAR(ci.low, 0.0210937388288, 1e-10);
  EXPECT_NEAR(ci.high, 0.0425034141476, 1e-10);
  // No clicks: the lower bound is 0 and the upper one is not.
  const CtrInterval zero = WilsonInterval(0, 10);
  EXPECT_DOUBLE_EQ(zero.low, 0);
  EXPECT_NEAR(zero.high, 0.277532799863, 1e-10);
  const CtrInterval all = WilsonInterval(10, 10);
  EXPECT_NEAR(all.low, 0.722467200137, 1e-10);
  EXPECT_NEAR(all.high, 1.0, 1e-12);
  const CtrInterval none = WilsonInterval(0, 0);
  EXPECT_EQ(none.ctr, 0);
  EXPECT_EQ(none.low, 0);
  EXPECT_EQ(none.high, 1);
}

TEST(AbStatsTest, TwoProportionZTestMatchesHandComputedValues) {
  // 30/1000 vs 50/1000: pooled 0.04, se sqrt(0.04 * 0.96 * 0.002).
  const ZTest t = TwoProportionZTest(30, 1000, 50, 1000);
  EXPECT_NEAR(t.z, -2.28217732294, 1e-9);
  EXPECT_NEAR(t.p_value, 0.0224788733661, 1e-10);
  const ZTest swapped = TwoProportionZTest(50, 1000, 30, 1000);
  EXPECT_NEAR(swapped.z, 2.28217732294, 1e-9);
  EXPECT_NEAR(swapped.p_value, t.p_value, 1e-15);
  // Equal rates: z 0, p 1.
  const ZTest same = TwoProportionZTest(5, 100, 10, 200);
  EXPECT_NEAR(same.z, 0, 1e-12);
  EXPECT_NEAR(same.p_value, 1, 1e-12);
  // Undefined: no impressions, or no variance.
  EXPECT_EQ(TwoProportionZTest(0, 0, 3, 10).p_value, 1);
  EXPECT_EQ(TwoProportionZTest(0, 10, 0, 10).p_value, 1);
  EXPECT_EQ(TwoProportionZTest(0, 10, 0, 10).z, 0);
}

}  // namespace
}  // namespace tessera::feedback
