// Model::Explain of lr, fm and deepfm (models/explanation.h) and the shared
// helpers of models/layers/explain_util.h: the additive identity
// logit == bias + sum(fields), the exact first-order and FM shares checked
// against values computed by hand, and gradient x input of the MLP.
#include <cmath>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "models/explanation.h"
#include "models/layers/explain_util.h"
#include "models/layers/fm_interaction.h"
#include "models/layers/mlp.h"
#include "models/model.h"
#include "tests/models/model_test_util.h"
#include "tests/testing/status_matchers.h"

namespace tessera::models {
namespace {

using testing::DenseParams;
using testing::FillRandomValues;
using testing::MakeBatch;
using testing::ParseSchemaOrDie;
using testing::TestExample;

// Fields: user 0, item 1, price 2 (numeric column 0), hist 3, age 4
// (numeric column 1).
constexpr char kSchema[] = R"(
fields:
  - {name: user, type: categorical}
  - {name: item, type: categorical}
  - {name: price, type: numeric}
  - {name: hist, type: sequence, table: item, max_len: 5}
  - {name: age, type: numeric}
)";
constexpr int kNumFields = 5;

// Missing item, empty and long histories, a sequence key that is also a
// target key.
std::vector<TestExample> Examples() {
  return {{.label = 1, .keys = {{1}, {10}, {11, 12}}, .numeric = {0.5f, 2.0f}},
          {.label = 0, .keys = {{2}, {}, {10}}, .numeric = {-1.0f, 0.0f}},
          {.label = 0, .keys = {{1}, {12}, {}}, .numeric = {1.5f, -0.5f}},
          {.label = 1, .keys = {{3}, {11}, {10, 11, 12, 13}}, .numeric = {0.0f, 1.0f}}};
}

// (Fields set one by one rather than by designated initializers, which
// -Wmissing-field-initializers flags for members without a default.)
std::unique_ptr<Model> MakeModel(const std::string& type, const Schema& schema,
                                 uint32_t embedding_dim = 4,
                                 std::vector<uint32_t> hidden = {16, 8}) {
  ModelConfig config;
  config.type = type;
  config.embedding_dim = embedding_dim;
  config.hidden = std::move(hidden);
  StatusOr<std::unique_ptr<Model>> model = NewModel(config, schema);
  EXPECT_OK(model);
  return model.ok() ? *std::move(model) : nullptr;
}

int BlockIndex(const Model& model, const std::string& name) {
  const std::vector<DenseBlock>& blocks = model.dense_blocks();
  for (size_t i = 0; i < blocks.size(); ++i) {
    if (blocks[i].name == name) return static_cast<int>(i);
  }
  ADD_FAILURE() << "no dense block " << name;
  return 0;
}

// Field f of example i, by hand: its first-order weight w and factor vector
// v (dim floats), as layers/field_embedding.h defines them.
struct HandField {
  double w = 0;
  std::vector<double> v;
};

std::vector<std::vector<HandField>> HandFields(const Schema& schema, const Batch& batch,
                                               const Model& model, const DenseParams& dense,
                                               int dim) {
  std::vector<std::vector<HandField>> out(batch.size, std::vector<HandField>(kNumFields));
  for (auto& example : out) {
    for (HandField& field : example) field.v.assign(dim, 0.0);
  }
  for (const FieldBatch& fb : batch.fields) {
    const RowMatrix& values = batch.tables[fb.table_batch].values;
    for (int i = 0; i < batch.size; ++i) {
      const uint32_t begin = fb.offsets[i], end = fb.offsets[i + 1];
      HandField& field = out[i][fb.field];
      for (uint32_t r = begin; r < end; ++r) {
        const double scale = 1.0 / (end - begin);  // sum of one, or the mean
        field.w += scale * values(fb.rows[r], 0);
        for (int d = 0; d < dim; ++d) field.v[d] += scale * values(fb.rows[r], 1 + d);
      }
    }
  }
  for (const Field& field : schema.fields()) {
    if (field.type != FieldType::kNumeric) continue;
    const int f = schema.FieldIndex(field.name);
    const int col = field.numeric_index;
    for (int i = 0; i < batch.size; ++i) {
      const double x = batch.numeric(i, col);
      out[i][f].w = x * dense.values[BlockIndex(model, "numeric.w")][col];
      for (int d = 0; d < dim; ++d) {
        out[i][f].v[d] = x * dense.values[BlockIndex(model, "numeric.v")][col * dim + d];
      }
    }
  }
  return out;
}

double Dot(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0;
  for (size_t d = 0; d < a.size(); ++d) s += a[d] * b[d];
  return s;
}

double Sum(const Explanation& e) {
  double s = e.bias;
  for (float c : e.fields) s += c;
  return s;
}

double Sigmoid(double z) { return 1.0 / (1.0 + std::exp(-z)); }

// logit == bias + sum(fields) (relative 1e-5, absolute 1e-5 near 0) and
// sigmoid(logit) is Predict's probability.
void ExpectSumIdentityAndPredict(Model* model, const Batch& batch, const DenseParams& dense,
                                 const std::vector<Explanation>& explanations) {
  ASSERT_EQ(explanations.size(), static_cast<size_t>(batch.size));
  std::vector<float> predictions(batch.size);
  model->Predict(batch, dense.in(), predictions);
  for (int i = 0; i < batch.size; ++i) {
    const Explanation& e = explanations[i];
    EXPECT_EQ(e.fields.size(), static_cast<size_t>(kNumFields));
    EXPECT_TRUE(e.attention.empty());
    EXPECT_NEAR(Sum(e), e.logit, 1e-5 * std::max(1.0f, std::fabs(e.logit))) << "example " << i;
    EXPECT_NEAR(Sigmoid(e.logit), predictions[i], 1e-6) << "example " << i;
  }
}

TEST(ExplainTest, LrFieldsAreTheFirstOrderTermsAndSumToTheLogit) {
  const Schema schema = ParseSchemaOrDie(kSchema);
  std::unique_ptr<Model> model = MakeModel("lr", schema);
  Batch batch = MakeBatch(schema, Examples(), model->row_dim());
  FillRandomValues(&batch, 7, 0.5f);
  const DenseParams dense(model->dense_blocks(), 8, /*zero_stddev=*/0.5f);
  std::vector<Explanation> out;
  ASSERT_OK(model->Explain(batch, dense.in(), &out));
  ExpectSumIdentityAndPredict(model.get(), batch, dense, out);
  const auto hand = HandFields(schema, batch, *model, dense, 0);
  const float bias = dense.values[BlockIndex(*model, "bias")][0];
  ASSERT_NE(bias, 0.0f);
  for (int i = 0; i < batch.size; ++i) {
    EXPECT_FLOAT_EQ(out[i].bias, bias);
    for (int f = 0; f < kNumFields; ++f) {
      EXPECT_NEAR(out[i].fields[f], hand[i][f].w, 1e-6) << "example " << i << " field " << f;
    }
  }
  EXPECT_EQ(out[1].fields[1], 0.0f);  // missing item
  EXPECT_EQ(out[2].fields[3], 0.0f);  // empty history
}

TEST(ExplainTest, FmAddsHalfOfEachPairwiseInteraction) {
  const Schema schema = ParseSchemaOrDie(kSchema);
  constexpr int kDim = 3;
  std::unique_ptr<Model> model = MakeModel("fm", schema, kDim);
  Batch batch = MakeBatch(schema, Examples(), model->row_dim());
  FillRandomValues(&batch, 11, 0.5f);
  const DenseParams dense(model->dense_blocks(), 12, /*zero_stddev=*/0.5f);
  std::vector<Explanation> out;
  ASSERT_OK(model->Explain(batch, dense.in(), &out));
  ExpectSumIdentityAndPredict(model.get(), batch, dense, out);
  const auto hand = HandFields(schema, batch, *model, dense, kDim);
  for (int i = 0; i < batch.size; ++i) {
    EXPECT_FLOAT_EQ(out[i].bias, dense.values[BlockIndex(*model, "bias")][0]);
    for (int f = 0; f < kNumFields; ++f) {
      double expected = hand[i][f].w;
      for (int g = 0; g < kNumFields; ++g) {
        if (g != f) expected += 0.5 * Dot(hand[i][f].v, hand[i][g].v);
      }
      EXPECT_NEAR(out[i].fields[f], expected, 1e-5) << "example " << i << " field " << f;
    }
  }
}

TEST(ExplainTest, DeepFmSumsToTheLogitAndMatchesPredict) {
  const Schema schema = ParseSchemaOrDie(kSchema);
  std::unique_ptr<Model> model = MakeModel("deepfm", schema, 4, {16, 8});
  Batch batch = MakeBatch(schema, Examples(), model->row_dim());
  FillRandomValues(&batch, 21, 0.5f);
  // Nonzero MLP biases: the remainder is real and goes to bias.
  const DenseParams dense(model->dense_blocks(), 22, /*zero_stddev=*/0.3f);
  std::vector<Explanation> out;
  ASSERT_OK(model->Explain(batch, dense.in(), &out));
  ExpectSumIdentityAndPredict(model.get(), batch, dense, out);
  // Explaining again (scratch reuse) gives the same answer.
  std::vector<Explanation> again;
  ASSERT_OK(model->Explain(batch, dense.in(), &again));
  for (int i = 0; i < batch.size; ++i) EXPECT_EQ(again[i].fields, out[i].fields);
}

// A ReLU MLP with zero biases is positively homogeneous and piecewise
// linear, so gradient x input over all of its input is its output exactly:
// the bias of the explanation is just the model's global bias, and each
// field's share is the fm share plus its gradient x input.
TEST(ExplainTest, DeepFmWithZeroMlpBiasesLeavesNoRemainder) {
  const Schema schema = ParseSchemaOrDie(kSchema);
  constexpr int kDim = 4;
  std::unique_ptr<Model> deepfm = MakeModel("deepfm", schema, kDim, {16, 8});
  std::unique_ptr<Model> fm = MakeModel("fm", schema, kDim);
  Batch batch = MakeBatch(schema, Examples(), deepfm->row_dim());
  FillRandomValues(&batch, 31, 0.5f);
  DenseParams dense(deepfm->dense_blocks(), 32, /*zero_stddev=*/0.0f);
  dense.values[BlockIndex(*deepfm, "bias")][0] = 0.25f;
  for (int l = 0; l < 3; ++l) {
    for (float b : dense.values[BlockIndex(*deepfm, "mlp." + std::to_string(l) + ".bias")]) {
      ASSERT_EQ(b, 0.0f);
    }
  }
  std::vector<Explanation> out;
  ASSERT_OK(deepfm->Explain(batch, dense.in(), &out));
  ExpectSumIdentityAndPredict(deepfm.get(), batch, dense, out);
  for (const Explanation& e : out) EXPECT_NEAR(e.bias, 0.25f, 1e-5);

  // The fm part alone (same first dense blocks: bias, numeric.w, numeric.v).
  const DenseParams fm_dense(fm->dense_blocks(), 0);
  std::vector<std::vector<float>> fm_values(dense.values.begin(),
                                            dense.values.begin() + fm_dense.values.size());
  std::vector<std::span<const float>> fm_in(fm_values.begin(), fm_values.end());
  std::vector<Explanation> fm_out;
  ASSERT_OK(fm->Explain(batch, fm_in, &fm_out));
  double mlp_total = 0;
  for (int i = 0; i < batch.size; ++i) {
    for (int f = 0; f < kNumFields; ++f) {
      mlp_total += std::fabs(out[i].fields[f] - fm_out[i].fields[f]);
    }
  }
  EXPECT_GT(mlp_total, 1e-3);  // the MLP does contribute
}

TEST(ExplainTest, EmptyBatchGivesNoExplanations) {
  const Schema schema = ParseSchemaOrDie(kSchema);
  for (const char* type : {"lr", "fm", "deepfm"}) {
    std::unique_ptr<Model> model = MakeModel(type, schema);
    Batch batch = MakeBatch(schema, {}, model->row_dim());
    const DenseParams dense(model->dense_blocks(), 1);
    std::vector<Explanation> out(3);
    SCOPED_TRACE(type);
    EXPECT_OK(model->Explain(batch, dense.in(), &out));
    EXPECT_TRUE(out.empty()) << type;
  }
}

TEST(ExplainTest, RejectsDenseBlocksOfTheWrongShape) {
  const Schema schema = ParseSchemaOrDie(kSchema);
  std::unique_ptr<Model> model = MakeModel("lr", schema);
  Batch batch = MakeBatch(schema, Examples(), model->row_dim());
  std::vector<Explanation> out;
  EXPECT_EQ(model->Explain(batch, {}, &out).code(), StatusCode::kInvalidArgument);
}

// A model that does not override Explain: the default says so.
class SilentModel final : public Model {
 public:
  uint32_t row_dim() const override { return 1; }
  const std::vector<DenseBlock>& dense_blocks() const override { return blocks_; }
  float TrainStep(Batch* /*batch*/, std::span<const std::span<const float>> /*dense*/,
                  std::span<const std::span<float>> /*dense_grads*/,
                  std::span<float> /*predictions*/) override {
    return 0;
  }
  void Predict(const Batch& /*batch*/, std::span<const std::span<const float>> /*dense*/,
               std::span<float> /*predictions*/) override {}

 private:
  std::vector<DenseBlock> blocks_;
};

TEST(ExplainTest, ModelsThatCannotExplainSayUnimplemented) {
  SilentModel model;
  std::vector<Explanation> out;
  EXPECT_EQ(model.Explain(Batch(), {}, &out).code(), StatusCode::kUnimplemented);
}

TEST(ExplainUtilTest, FmSharesArePairwiseHalvesAndSumToTheInteraction) {
  constexpr int kFields = 3, kDim = 2;
  RowMatrix e(2, kFields * kDim);
  e << 1, 2, -1, 0.5, 3, -2,  //
      0, 0, 4, 1, -1, 2;      // a missing (zero) first field
  std::vector<Explanation> out;
  layers::ResetExplanations(2, kFields, 0.0f, &out);
  layers::AddFmShares(e, kFields, kDim, &out);
  auto dot = [&](int i, int f, int g) {
    return e(i, f * kDim) * e(i, g * kDim) + e(i, f * kDim + 1) * e(i, g * kDim + 1);
  };
  std::vector<float> interaction(2);
  layers::FmInteraction fm(kFields, kDim);
  fm.Forward(e, interaction);
  for (int i = 0; i < 2; ++i) {
    for (int f = 0; f < kFields; ++f) {
      double expected = 0;
      for (int g = 0; g < kFields; ++g) expected += g == f ? 0 : 0.5 * dot(i, f, g);
      EXPECT_FLOAT_EQ(out[i].fields[f], expected) << i << " " << f;
    }
    EXPECT_NEAR(Sum(out[i]), interaction[i], 1e-5);
  }
  EXPECT_EQ(out[1].fields[0], 0.0f);
  // Row 0 by hand: <v0,v1> = -1 + 1 = 0, <v0,v2> = 3 - 4 = -1,
  // <v1,v2> = -3 - 1 = -4.
  EXPECT_FLOAT_EQ(out[0].fields[0], 0.5f * (0.0f - 1.0f));
  EXPECT_FLOAT_EQ(out[0].fields[1], 0.5f * (0.0f - 4.0f));
  EXPECT_FLOAT_EQ(out[0].fields[2], 0.5f * (-1.0f - 4.0f));
}

// A linear MLP (no hidden layer): the shares are x_c * w_c exactly, and
// the bias and columns in no slice go to the remainder.
TEST(ExplainUtilTest, MlpGradientTimesInputOfALinearLayer) {
  layers::Mlp mlp(4, {}, 1);
  const std::vector<float> w = {1.0f, -2.0f, 0.5f, 3.0f};
  const std::vector<float> b = {0.75f};
  const std::vector<std::span<const float>> params = {w, b};
  RowMatrix x(2, 4);
  x << 1, 2, 3, 4,  //
      -1, 0, 2, 0.5;
  const std::vector<layers::FieldColumns> slices = {{.field = 1, .begin = 0, .size = 2},
                                                    {.field = 0, .begin = 2, .size = 1}};
  std::vector<Explanation> out;
  layers::ResetExplanations(2, 2, 0.5f, &out);
  layers::AddMlpGradientTimesInput(&mlp, x, params, slices, &out);
  // Row 0: field 1 = 1 - 4 = -3; field 0 = 1.5; column 3 (12) and b in bias.
  EXPECT_FLOAT_EQ(out[0].fields[1], -3.0f);
  EXPECT_FLOAT_EQ(out[0].fields[0], 1.5f);
  EXPECT_FLOAT_EQ(out[0].bias, 0.5f + 0.75f + 12.0f);
  EXPECT_FLOAT_EQ(out[1].fields[1], -1.0f);
  EXPECT_FLOAT_EQ(out[1].fields[0], 1.0f);
  EXPECT_FLOAT_EQ(out[1].bias, 0.5f + 0.75f + 1.5f);
}

TEST(ExplainUtilTest, ConsecutiveFieldColumnsAndSetLogits) {
  const std::vector<layers::FieldColumns> c = layers::ConsecutiveFieldColumns(3, 4);
  ASSERT_EQ(c.size(), 3u);
  EXPECT_EQ(c[2].field, 2);
  EXPECT_EQ(c[2].begin, 8);
  EXPECT_EQ(c[2].size, 4);
  std::vector<Explanation> out(5);
  out[0].attention.push_back({.field = 1, .weights = {1.0f}});
  layers::ResetExplanations(2, 3, 1.5f, &out);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_TRUE(out[0].attention.empty());
  EXPECT_EQ(out[1].fields, std::vector<float>(3, 0.0f));
  const std::vector<float> logits = {0.25f, -1.0f};
  layers::SetLogits(logits, &out);
  EXPECT_EQ(out[1].logit, -1.0f);
}

}  // namespace
}  // namespace tessera::models
