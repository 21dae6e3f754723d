#include "models/metrics.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

namespace tessera::models {
namespace {

using ::testing::DoubleNear;
using ::testing::Optional;

constexpr double kTol = 1e-9;

TEST(MetricsTest, AucOfTheClassicExample) {
  // Positives 0.35 and 0.8 against negatives 0.1 and 0.4: 3 of 4 pairs ordered.
  const std::vector<float> p = {0.1f, 0.4f, 0.35f, 0.8f};
  const std::vector<float> y = {0, 0, 1, 1};
  EXPECT_THAT(Auc(p, y), Optional(DoubleNear(0.75, kTol)));
}

TEST(MetricsTest, AucCountsTiesAsOneHalf) {
  // Pairs (pos, neg): (0.5, 0.2) 1, (0.5, 0.5) 1/2, (0.9, 0.2) 1, (0.9, 0.5) 1.
  EXPECT_THAT(Auc(std::vector<float>{0.2f, 0.5f, 0.5f, 0.9f}, std::vector<float>{0, 1, 0, 1}),
              Optional(DoubleNear(3.5 / 4, kTol)));
  EXPECT_THAT(Auc(std::vector<float>{0.5f, 0.5f, 0.5f}, std::vector<float>{0, 1, 1}),
              Optional(DoubleNear(0.5, kTol)));
}

TEST(MetricsTest, AucPerfectInvertedAndUndefined) {
  const std::vector<float> y = {0, 0, 1, 1};
  EXPECT_THAT(Auc(std::vector<float>{0.1f, 0.2f, 0.3f, 0.4f}, y), Optional(DoubleNear(1.0, kTol)));
  EXPECT_THAT(Auc(std::vector<float>{0.4f, 0.3f, 0.2f, 0.1f}, y), Optional(DoubleNear(0.0, kTol)));
  EXPECT_EQ(Auc(std::vector<float>{0.1f, 0.2f}, std::vector<float>{1, 1}), std::nullopt);
  EXPECT_EQ(Auc({}, {}), std::nullopt);
}

TEST(MetricsTest, LogLossIsTheMeanAndClipped) {
  EXPECT_THAT(LogLoss(std::vector<float>{0.9f, 0.2f}, std::vector<float>{1, 0}),
              Optional(DoubleNear((-std::log(0.9) - std::log(0.8)) / 2, 1e-7)));
  EXPECT_THAT(LogLoss(std::vector<float>{0.0f}, std::vector<float>{1}),
              Optional(DoubleNear(-std::log(kLogLossEpsilon), 1e-9)));
  EXPECT_THAT(LogLoss(std::vector<float>{1.0f}, std::vector<float>{0}),
              Optional(DoubleNear(-std::log(kLogLossEpsilon), 1e-6)));
  EXPECT_EQ(LogLoss({}, {}), std::nullopt);
}

TEST(MetricsTest, GaucIsImpressionWeightedOverGroupsWithBothClasses) {
  // Group 7: the classic example (AUC 0.75, 4 impressions); group 3:
  // perfect (AUC 1, 2 impressions); group 9: clicks only, skipped.
  const std::vector<float> p = {0.1f, 0.3f, 0.4f, 0.35f, 0.6f, 0.8f, 0.5f};
  const std::vector<float> y = {0, 0, 0, 1, 1, 1, 1};
  const std::vector<uint64_t> g = {7, 3, 7, 7, 3, 7, 9};
  EXPECT_THAT(Gauc(p, y, g), Optional(DoubleNear((4 * 0.75 + 2 * 1.0) / 6, kTol)));
  EXPECT_EQ(Gauc(std::vector<float>{0.5f}, std::vector<float>{1}, std::vector<uint64_t>{1}), std::nullopt);
  // Examples without a group form none.
  EXPECT_EQ(Gauc(std::vector<float>{0.2f, 0.8f}, std::vector<float>{0, 1},
                 std::vector<uint64_t>{kNoGroup, kNoGroup}),
            std::nullopt);
}

TEST(MetricsTest, CalibrationIsMeanPredictionOverCtr) {
  EXPECT_THAT(Calibration(std::vector<float>{0.2f, 0.2f, 0.2f, 0.2f}, std::vector<float>{1, 0, 0, 0}),
              Optional(DoubleNear(0.8, 1e-6)));
  EXPECT_EQ(Calibration(std::vector<float>{0.2f}, std::vector<float>{0}), std::nullopt);
}

TEST(MetricsTest, EvaluateComputesEverything) {
  const std::vector<float> p = {0.1f, 0.4f, 0.35f, 0.8f};
  const std::vector<float> y = {0, 0, 1, 1};
  const std::vector<uint64_t> g = {1, 1, 1, 1};
  const EvalMetrics m = Evaluate(p, y, g);
  EXPECT_EQ(m.count, 4u);
  EXPECT_DOUBLE_EQ(m.ctr, 0.5);
  EXPECT_THAT(m.auc, Optional(DoubleNear(0.75, kTol)));
  EXPECT_THAT(m.gauc, Optional(DoubleNear(0.75, kTol)));
  EXPECT_THAT(m.calibration, Optional(DoubleNear(1.65 / 2, 1e-6)));
  EXPECT_TRUE(m.logloss.has_value());
  EXPECT_FALSE(Evaluate(p, y, {}).gauc.has_value());
}

TEST(WindowedMetricsTest, KeepsOnlyTheLastWindow) {
  WindowedMetrics w(4);
  EXPECT_EQ(w.Auc(), std::nullopt);
  EXPECT_EQ(w.LogLoss(), std::nullopt);
  // Two early examples that would make the AUC 0 if they were kept.
  w.Add(0.99f, 0);
  w.Add(0.01f, 1);
  w.Add(std::vector<float>{0.1f, 0.4f, 0.35f, 0.8f}, std::vector<float>{0, 0, 1, 1});
  EXPECT_EQ(w.size(), 4u);
  EXPECT_EQ(w.total(), 6u);
  EXPECT_THAT(w.Auc(), Optional(DoubleNear(0.75, kTol)));
  const std::vector<float> p = {0.1f, 0.4f, 0.35f, 0.8f};
  const std::vector<float> y = {0, 0, 1, 1};
  EXPECT_THAT(w.LogLoss(), Optional(DoubleNear(*LogLoss(p, y), 1e-12)));
  w.Add(0.9f, 1);  // replaces 0.1/0: one negative (0.4) against 0.35, 0.8, 0.9
  EXPECT_THAT(w.Auc(), Optional(DoubleNear(2.0 / 3, kTol)));
}

}  // namespace
}  // namespace tessera::models
