// The sequence-model layers the Transformer suite does not cover: History
// (padded layout of a sequence field) and DinAttention's pooling semantics.
// Their gradients are checked end to end in gradient_check_test (din, bst).
#include <cmath>
#include <span>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "models/layers/din_attention.h"
#include "models/layers/history.h"
#include "models/model.h"
#include "tests/models/model_test_util.h"

namespace tessera::models::layers {
namespace {

using ::testing::ElementsAre;
using ::testing::FloatNear;
using tessera::models::testing::Flat;

// Example 0: rows {2, 0}; 1: empty; 2: rows {1}.
FieldBatch TestField() {
  FieldBatch field;
  field.offsets = {0, 2, 2, 3};
  field.rows = {2, 0, 1};
  return field;
}

RowMatrix TestValues() {
  RowMatrix values(3, 3);  // column 0 is a weight, columns 1-2 the embedding
  values << 9, 1, 2,  //
      9, 10, 20,      //
      9, 100, 200;
  return values;
}

TEST(HistoryTest, LaysOutTokensLeftAlignedWithExtraPositions) {
  History history;
  history.Layout(TestField(), /*extra=*/1);
  EXPECT_EQ(history.batch_size(), 3);
  EXPECT_EQ(history.max_length(), 3);
  EXPECT_THAT(history.lengths(), ElementsAre(2u, 0u, 1u));
  RowMatrix out;
  history.Gather(TestValues(), 1, 2, &out);
  EXPECT_THAT(Flat(out), ElementsAre(100, 200, 1, 2, 0, 0,  //
                                     0, 0, 0, 0, 0, 0,      //
                                     10, 20, 0, 0, 0, 0));
}

TEST(HistoryTest, ScatterAddIsTheAdjointOfGather) {
  History history;
  history.Layout(TestField(), 1);
  RowMatrix dout = RowMatrix::Constant(9, 2, 1.0f);
  dout.row(2).setConstant(50);  // an extra position: ignored
  RowMatrix grads = RowMatrix::Zero(3, 3);
  history.ScatterAdd(dout, 1, &grads);
  EXPECT_THAT(Flat(grads), ElementsAre(0, 1, 1, 0, 1, 1, 0, 1, 1));
}

TEST(HistoryTest, AllEmptyHistoriesStillHaveOnePosition) {
  FieldBatch field;
  field.offsets = {0, 0, 0};
  History history;
  history.Layout(field, 0);
  EXPECT_EQ(history.max_length(), 1);
  RowMatrix out;
  history.Gather(TestValues(), 1, 2, &out);
  EXPECT_EQ(out.rows(), 2);
  EXPECT_TRUE(out.isZero());
}

// Parameters of a 1-layer unit (no hidden layer): score = x . w + b.
struct UnitParams {
  std::vector<float> weight;  // 4 dim
  std::vector<float> bias = {0.5f};
  std::vector<std::span<const float>> spans() const { return {weight, bias}; }
};

TEST(DinAttentionTest, RawWeightsAreTheUnitScoresAndEmptyHistoriesPoolToZero) {
  DinAttention unit(2, {}, DinAttention::Weights::kRaw);
  // score = 0.5 + 0.01 * (h0 + h1): depends on h only.
  UnitParams params{.weight = {0.01f, 0.01f, 0, 0, 0, 0, 0, 0}};
  RowMatrix target = RowMatrix::Zero(3, 2);
  RowMatrix pooled(3, 2);
  const auto spans = params.spans();
  unit.Forward(TestField(), TestValues(), 1, target, spans, pooled);
  EXPECT_THAT(unit.weights(), ElementsAre(FloatNear(3.5f, 1e-5f), FloatNear(0.53f, 1e-5f),
                                          FloatNear(0.8f, 1e-5f)));
  EXPECT_NEAR(pooled(0, 0), 3.5f * 100 + 0.53f * 1, 1e-3);
  EXPECT_THAT(Flat(pooled.row(1)), ElementsAre(0, 0));
  EXPECT_NEAR(pooled(2, 1), 0.8f * 20, 1e-4);
}

TEST(DinAttentionTest, SigmoidWeightsAreTheScoresSquashed) {
  DinAttention unit(2, {}, DinAttention::Weights::kSigmoid);
  UnitParams params{.weight = {0.01f, 0.01f, 0, 0, 0, 0, 0, 0}};
  RowMatrix target = RowMatrix::Zero(3, 2);
  RowMatrix pooled(3, 2);
  const auto spans = params.spans();
  unit.Forward(TestField(), TestValues(), 1, target, spans, pooled);
  const auto sigmoid = [](float x) { return 1.0f / (1.0f + std::exp(-x)); };
  EXPECT_THAT(unit.weights(), ElementsAre(FloatNear(sigmoid(3.5f), 1e-6f),
                                          FloatNear(sigmoid(0.53f), 1e-6f),
                                          FloatNear(sigmoid(0.8f), 1e-6f)));
  EXPECT_NEAR(pooled(2, 1), sigmoid(0.8f) * 20, 1e-4);
}

TEST(DinAttentionTest, SoftmaxWeightsSumToOneAndStayFiniteForLargeScores) {
  DinAttention unit(2, {}, DinAttention::Weights::kSoftmax);
  UnitParams params{.weight = {50, 50, 0, 0, 0, 0, 0, 0}};  // scores up to 15000
  RowMatrix target = RowMatrix::Zero(3, 2);
  RowMatrix pooled(3, 2);
  const auto spans = params.spans();
  unit.Forward(TestField(), TestValues(), 1, target, spans, pooled);
  const std::span<const float> w = unit.weights();
  EXPECT_NEAR(w[0] + w[1], 1.0f, 1e-6);
  EXPECT_NEAR(w[0], 1.0f, 1e-6);  // row 2 (100, 200) dominates
  EXPECT_NEAR(w[2], 1.0f, 1e-6);  // a single token gets all the weight
  for (float x : Flat(pooled)) EXPECT_TRUE(std::isfinite(x));
}

}  // namespace
}  // namespace tessera::models::layers
