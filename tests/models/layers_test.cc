// Forward golden values and finite-difference checks of every layer's
// backward.
#include <cmath>
#include <limits>
#include <random>
#include <span>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "models/layers/embedding_bag.h"
#include "models/layers/field_embedding.h"
#include "models/layers/fm_interaction.h"
#include "models/layers/linear.h"
#include "models/layers/log_loss.h"
#include "models/layers/mlp.h"
#include "tests/models/model_test_util.h"

namespace tessera::models::layers {
namespace {

using ::testing::ElementsAre;
using ::testing::FloatNear;
using ::testing::Pointwise;
using tessera::models::testing::ExpectGradientMatches;
using tessera::models::testing::FillRandomValues;
using tessera::models::testing::MakeBatch;
using tessera::models::testing::ParseSchemaOrDie;
using tessera::models::testing::Dot;
using tessera::models::testing::Flat;
using tessera::models::testing::Random;
using tessera::models::testing::Span;

// Example 0: rows {0}; 1: missing; 2: rows {1, 2}; 3: rows {2, 2}.
FieldBatch TestField() {
  FieldBatch field;
  field.offsets = {0, 1, 1, 3, 5};
  field.rows = {0, 1, 2, 2, 2};
  return field;
}

TEST(EmbeddingBagTest, SumPoolsTheRowsAndZerosMissingExamples) {
  RowMatrix values(3, 3);
  values << 9, 1, 2,  //
      9, 10, 20,      //
      9, 100, 200;
  RowMatrix out(4, 2);
  EmbeddingBagForward(TestField(), values, 1, Pooling::kSum, out);
  EXPECT_THAT(Flat(out), ElementsAre(1, 2, 0, 0, 110, 220, 200, 400));
}

TEST(EmbeddingBagTest, MeanPoolsIntoAColumnBlockOfAWiderMatrix) {
  RowMatrix values(3, 2);
  values << 1, 2,  //
      10, 20,      //
      100, 200;
  RowMatrix out = RowMatrix::Constant(4, 4, -1.0f);
  EmbeddingBagForward(TestField(), values, 0, Pooling::kMean, out.middleCols(1, 2));
  EXPECT_THAT(Flat(out), ElementsAre(-1, 1, 2, -1,    //
                                     -1, 0, 0, -1,    //
                                     -1, 55, 110, -1,  //
                                     -1, 100, 200, -1));
}

TEST(EmbeddingBagTest, BackwardSumsSharedRowsAndScalesMeans) {
  RowMatrix dout(4, 1);
  dout << 1, 2, 4, 8;
  RowMatrix grads = RowMatrix::Zero(3, 2);
  EmbeddingBagBackward(TestField(), dout, 1, Pooling::kMean, &grads);
  // Row 0: 1; row 1: 4 / 2; row 2: 4 / 2 + 8 / 2 + 8 / 2.
  EXPECT_THAT(Flat(grads), ElementsAre(0, 1, 0, 2, 0, 10));
}

TEST(EmbeddingBagTest, BackwardMatchesFiniteDifferences) {
  for (Pooling pooling : {Pooling::kSum, Pooling::kMean}) {
    RowMatrix values = Random(3, 5, 1);
    const RowMatrix r = Random(4, 3, 2);
    RowMatrix out(4, 3);
    auto loss = [&] {
      EmbeddingBagForward(TestField(), values, 2, pooling, out);
      return Dot(r, out);
    };
    RowMatrix grads = RowMatrix::Zero(3, 5);
    EmbeddingBagBackward(TestField(), r, 2, pooling, &grads);
    ExpectGradientMatches(Span(values), Span(grads), loss, "values");
  }
}

// Slots: user (0), price (1, numeric column 0), hist (2, table item), item (3).
constexpr char kFieldSchema[] = R"(
fields:
  - {name: user, type: categorical}
  - {name: price, type: numeric}
  - {name: hist, type: sequence, table: item, max_len: 5}
  - {name: item, type: categorical}
)";

// Example 0: user 1, hist {10, 11}, item 11, price 2. Example 1: only item
// 10 and price 0.5. Rows (w, v0, v1): user 1 = (0.5, 1, 2); item 10 =
// (1, 2, 3); item 11 = (3, 4, 5).
Batch FieldTestBatch(const Schema& schema) {
  Batch batch = MakeBatch(schema,
                          {{.label = 1, .keys = {{1}, {10, 11}, {11}}, .numeric = {2}},
                           {.label = 0, .keys = {{}, {}, {10}}, .numeric = {0.5f}}},
                          3);
  batch.tables[0].values << 0.5f, 1, 2;
  batch.tables[1].values << 1, 2, 3,  // item 10 (first seen in hist)
      3, 4, 5;                        // item 11
  return batch;
}

TEST(FieldEmbeddingTest, OneSlotPerSchemaFieldWithPooledSequencesAndScaledNumerics) {
  const Schema schema = ParseSchemaOrDie(kFieldSchema);
  StatusOr<FieldEmbedding> fields =
      FieldEmbedding::Create(schema, 2, FieldEmbedding::Sequences::kMeanPool);
  ASSERT_TRUE(fields.ok()) << fields.status();
  EXPECT_EQ(fields->num_fields(), 4);
  EXPECT_EQ(fields->row_dim(), 3u);
  const std::vector<float> numeric_w = {4}, numeric_v = {1, -1};
  fields->Forward(FieldTestBatch(schema), numeric_w, numeric_v);
  EXPECT_THAT(Flat(fields->linear()), ElementsAre(0.5f, 8, 2, 3,  //
                                                  0, 2, 0, 1));
  EXPECT_THAT(Flat(fields->embeddings()), ElementsAre(1, 2, 2, -2, 3, 4, 4, 5,  //
                                                      0, 0, 0.5f, -0.5f, 0, 0, 2, 3));
}

TEST(FieldEmbeddingTest, AttendedSequencesStayZeroAndGetNoGradient) {
  const Schema schema = ParseSchemaOrDie(kFieldSchema);
  const int hist = schema.FieldIndex("hist");
  StatusOr<FieldEmbedding> fields =
      FieldEmbedding::Create(schema, 2, std::span<const int>(&hist, 1));
  ASSERT_TRUE(fields.ok()) << fields.status();
  Batch batch = FieldTestBatch(schema);
  const std::vector<float> numeric_w = {4}, numeric_v = {1, -1};
  fields->Forward(batch, numeric_w, numeric_v);
  EXPECT_THAT(Flat(fields->linear()), ElementsAre(0.5f, 8, 0, 3, 0, 2, 0, 1));
  const RowMatrix dembeddings = RowMatrix::Zero(2, 8);
  const std::vector<float> dlogits = {1, 1};
  std::vector<float> dw(1), dv(2);
  fields->Backward(&batch, dlogits, &dembeddings, dw, dv);
  // Item rows get only the item field's gradient: item 10 from example 1,
  // item 11 from example 0.
  EXPECT_THAT(Flat(batch.tables[1].grads), ElementsAre(1, 0, 0, 1, 0, 0));
  EXPECT_THAT(dw, ElementsAre(2.5f));
}

TEST(FieldEmbeddingTest, OnlySequenceFieldsCanBeAttended) {
  const Schema schema = ParseSchemaOrDie(kFieldSchema);
  const int item = schema.FieldIndex("item");
  EXPECT_FALSE(FieldEmbedding::Create(schema, 2, std::span<const int>(&item, 1)).ok());
  const int out_of_range = 99;
  EXPECT_FALSE(FieldEmbedding::Create(schema, 2, std::span<const int>(&out_of_range, 1)).ok());
}

TEST(FieldEmbeddingTest, BackwardMatchesFiniteDifferences) {
  const Schema schema = ParseSchemaOrDie(kFieldSchema);
  StatusOr<FieldEmbedding> fields =
      FieldEmbedding::Create(schema, 2, FieldEmbedding::Sequences::kMeanPool);
  ASSERT_TRUE(fields.ok()) << fields.status();
  Batch batch = FieldTestBatch(schema);
  FillRandomValues(&batch, 13, 1.0f);
  RowMatrix numeric_w = Random(1, 1, 14), numeric_v = Random(1, 2, 15);
  const RowMatrix r = Random(2, 8, 16);
  const std::vector<float> dlogits = {0.75f, -1.5f};
  // J = sum_i dlogits[i] * sum_f linear(i, f) + sum(r .* embeddings).
  auto loss = [&] {
    fields->Forward(batch, Span(numeric_w), Span(numeric_v));
    double total = Dot(r, fields->embeddings());
    for (int i = 0; i < 2; ++i) total += dlogits[i] * fields->linear().row(i).cast<double>().sum();
    return total;
  };
  loss();
  RowMatrix dw(1, 1), dv(1, 2);
  fields->Backward(&batch, dlogits, &r, Span(dw), Span(dv));
  for (size_t t = 0; t < batch.tables.size(); ++t) {
    RowMatrix grads = batch.tables[t].grads;
    ExpectGradientMatches(Span(batch.tables[t].values), Span(grads), loss,
                          "table " + std::to_string(t));
  }
  ExpectGradientMatches(Span(numeric_w), Span(dw), loss, "numeric_w");
  ExpectGradientMatches(Span(numeric_v), Span(dv), loss, "numeric_v");
}

TEST(LinearTest, ForwardIsXTimesWPlusB) {
  RowMatrix x(2, 3);
  x << 1, 2, 3,  //
      -1, 0, 1;
  const std::vector<float> w = {1, 2,  //
                                3, 4,  //
                                5, 6};
  const std::vector<float> b = {0.5f, -0.5f};
  RowMatrix y;
  LinearForward(x, w, b, &y);
  EXPECT_THAT(Flat(y), ElementsAre(22.5f, 27.5f, 4.5f, 3.5f));
}

TEST(LinearTest, BackwardMatchesFiniteDifferences) {
  RowMatrix x = Random(5, 4, 3);
  RowMatrix w = Random(4, 3, 4);
  RowMatrix b = Random(1, 3, 5);
  const RowMatrix r = Random(5, 3, 6);
  RowMatrix y;
  auto loss = [&] {
    LinearForward(x, Span(w), Span(b), &y);
    return Dot(r, y);
  };
  RowMatrix dw(4, 3), db(1, 3), dx;
  LinearBackward(x, r, Span(w), Span(dw), Span(db), &dx);
  ExpectGradientMatches(Span(w), Span(dw), loss, "w");
  ExpectGradientMatches(Span(b), Span(db), loss, "b");
  ExpectGradientMatches(Span(x), Span(dx), loss, "x");
}

TEST(ReluTest, ForwardClampsAndBackwardMasks) {
  RowMatrix x(1, 4);
  x << -2, 0, 0.5f, 3;
  ReluForward(&x);
  EXPECT_THAT(Flat(x), ElementsAre(0, 0, 0.5f, 3));
  RowMatrix dy(1, 4);
  dy << 1, 2, 3, 4;
  ReluBackward(x, &dy);
  EXPECT_THAT(Flat(dy), ElementsAre(0, 0, 3, 4));
}

TEST(FmInteractionTest, EqualsTheSumOfPairwiseDotProducts) {
  const int fields = 4, dim = 3;
  const RowMatrix e = Random(5, fields * dim, 7);
  FmInteraction fm(fields, dim);
  std::vector<float> out(5);
  fm.Forward(e, out);
  for (int i = 0; i < 5; ++i) {
    double pairwise = 0;
    for (int f = 0; f < fields; ++f) {
      for (int g = f + 1; g < fields; ++g) {
        pairwise += e.row(i).segment(f * dim, dim).dot(e.row(i).segment(g * dim, dim));
      }
    }
    EXPECT_NEAR(out[i], pairwise, 1e-5) << "example " << i;
  }
}

TEST(FmInteractionTest, BackwardAccumulatesAndMatchesFiniteDifferences) {
  const int fields = 3, dim = 4;
  RowMatrix e = Random(4, fields * dim, 8);
  const std::vector<float> r = {0.5f, -1.0f, 2.0f, 0.25f};
  FmInteraction fm(fields, dim);
  std::vector<float> out(4);
  auto loss = [&] {
    fm.Forward(e, out);
    double total = 0;
    for (int i = 0; i < 4; ++i) total += static_cast<double>(r[i]) * out[i];
    return total;
  };
  loss();
  RowMatrix de = RowMatrix::Constant(4, fields * dim, 1.0f);
  fm.Backward(e, r, &de);
  de.array() -= 1.0f;  // it accumulated onto the ones
  ExpectGradientMatches(Span(e), Span(de), loss, "e");
}

TEST(LogLossTest, GoldenValuesAndStableAtExtremeLogits) {
  const std::vector<float> logits = {0.0f, 2.0f, 100.0f, -100.0f, -3.0f};
  const std::vector<float> labels = {1, 0, 0, 1, 0};
  std::vector<float> probs(5), dlogits(5);
  const float loss = SigmoidLogLoss(logits, labels, probs, dlogits);
  // ln 2, 2 + ln(1 + e^-2), 100, 100, ln(1 + e^-3).
  const double expected =
      (std::log(2.0) + 2 + std::log1p(std::exp(-2.0)) + 200 + std::log1p(std::exp(-3.0))) / 5;
  EXPECT_NEAR(loss, expected, 1e-5);
  EXPECT_THAT(probs, Pointwise(FloatNear(1e-6f), {0.5f, 0.880797f, 1.0f, 0.0f, 0.0474259f}));
  EXPECT_THAT(dlogits, Pointwise(FloatNear(1e-6f),
                                 {-0.1f, 0.176159f, 0.2f, -0.2f, 0.00948517f}));
  std::vector<float> sigmoid(5);
  Sigmoid(logits, sigmoid);
  EXPECT_EQ(sigmoid, probs);
}

TEST(LogLossTest, GradientIsThatOfTheMeanLoss) {
  RowMatrix logits = Random(1, 6, 9, 2.0f);
  const std::vector<float> labels = {1, 0, 0, 1, 1, 0};
  std::vector<float> probs(6), dlogits(6);
  auto loss = [&] { return static_cast<double>(SigmoidLogLoss(Span(logits), labels, probs, dlogits)); };
  loss();
  const std::vector<float> analytic = dlogits;
  ExpectGradientMatches(Span(logits), analytic, loss, "logits");
}

TEST(LogLossTest, EmptyBatchHasZeroLoss) {
  EXPECT_EQ(SigmoidLogLoss({}, {}, {}, {}), 0.0f);
}

TEST(MlpTest, DenseBlocksAreNamedPerLayerWithHeInitialization) {
  Mlp mlp(8, {4, 2}, 1);
  std::vector<DenseBlock> blocks;
  mlp.AppendDenseBlocks("mlp", &blocks);
  ASSERT_EQ(blocks.size(), 6u);
  EXPECT_EQ(mlp.num_dense_blocks(), 6);
  const std::vector<std::string> names = {"mlp.0.weight", "mlp.0.bias", "mlp.1.weight",
                                          "mlp.1.bias",   "mlp.2.weight", "mlp.2.bias"};
  const std::vector<uint64_t> sizes = {32, 4, 8, 2, 2, 1};
  const std::vector<float> stddevs = {0.5f, 0, std::sqrt(0.5f), 0, std::sqrt(0.5f), 0};
  for (size_t i = 0; i < blocks.size(); ++i) {
    EXPECT_EQ(blocks[i].name, names[i]);
    EXPECT_EQ(blocks[i].size, sizes[i]) << names[i];
    EXPECT_FLOAT_EQ(blocks[i].init_stddev, stddevs[i]) << names[i];
  }
}

TEST(MlpTest, BackwardMatchesFiniteDifferences) {
  Mlp mlp(5, {6, 4}, 2);
  std::vector<DenseBlock> blocks;
  mlp.AppendDenseBlocks("mlp", &blocks);
  tessera::models::testing::DenseParams params(blocks, 10, /*zero_stddev=*/0.1f);
  RowMatrix x = Random(7, 5, 11);
  const RowMatrix r = Random(7, 2, 12);
  auto loss = [&] { return Dot(r, mlp.Forward(x, params.in())); };
  loss();
  RowMatrix dx;
  mlp.Backward(x, r, params.in(), params.out(), &dx);
  for (size_t i = 0; i < blocks.size(); ++i) {
    ExpectGradientMatches(params.values[i], params.grads[i], loss, blocks[i].name);
  }
  ExpectGradientMatches(Span(x), Span(dx), loss, "x");
}

TEST(MlpTest, WithoutHiddenLayersIsOneLinearLayer) {
  Mlp mlp(3, {}, 1);
  EXPECT_EQ(mlp.num_layers(), 1);
  const std::vector<float> w = {1, 2, -3}, b = {0.5f};
  const std::vector<std::span<const float>> params = {w, b};
  RowMatrix x(1, 3);
  x << 1, -1, 1;
  EXPECT_FLOAT_EQ(mlp.Forward(x, params)(0, 0), -3.5f);  // no ReLU on the output
}

}  // namespace
}  // namespace tessera::models::layers
