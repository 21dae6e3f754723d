// NewModel, dense block layouts, golden values of tiny lr and fm examples,
// and the semantics every model shares (missing fields, sequence pooling,
// Predict == TrainStep's predictions, scratch reuse, determinism).
#include <memory>
#include <span>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "models/model.h"
#include "tests/models/model_test_util.h"
#include "tests/testing/status_matchers.h"

namespace tessera::models {
namespace {

using ::testing::ElementsAre;
using ::testing::FloatNear;
using ::testing::HasSubstr;
using ::testing::Pointwise;
using testing::DenseParams;
using testing::FillRandomValues;
using testing::MakeBatch;
using testing::ParseSchemaOrDie;
using testing::TestExample;

constexpr char kTinySchema[] = R"(
fields:
  - {name: user, type: categorical}
  - {name: item, type: categorical}
  - {name: price, type: numeric}
)";

constexpr char kSchema[] = R"(
fields:
  - {name: user, type: categorical}
  - {name: item, type: categorical}
  - {name: price, type: numeric}
  - {name: hist, type: sequence, table: item, max_len: 5}
  - {name: age, type: numeric}
)";

std::unique_ptr<Model> MakeModel(const ModelConfig& config, const Schema& schema) {
  StatusOr<std::unique_ptr<Model>> model = NewModel(config, schema);
  EXPECT_OK(model);
  return model.ok() ? *std::move(model) : nullptr;
}

std::span<const float> Row(const RowMatrix& m, int r) {
  return {m.data() + r * m.cols(), static_cast<size_t>(m.cols())};
}

// Two examples: (user 1, item 10, price 0.5, click) and (user 2, no item,
// price -1, no click).
Batch TinyBatch(const Schema& schema, uint32_t row_dim) {
  return MakeBatch(schema, {{.label = 1, .keys = {{1}, {10}}, .numeric = {0.5f}},
                            {.label = 0, .keys = {{2}, {}}, .numeric = {-1.0f}}},
                   row_dim);
}

TEST(NewModelTest, RejectsUnknownTypesAndBadSizesNamingTheKey) {
  const Schema schema = ParseSchemaOrDie(kSchema);
  auto error = [&](ModelConfig config) { return NewModel(config, schema).status(); };
  EXPECT_THAT(error({.type = "xgboost"}).message(), HasSubstr("model.type"));
  EXPECT_THAT(error({.type = "fm", .embedding_dim = 0}).message(),
              HasSubstr("model.embedding_dim"));
  EXPECT_THAT(error({.type = "deepfm", .embedding_dim = 100000}).message(),
              HasSubstr("model.embedding_dim"));
  EXPECT_THAT(error({.type = "deepfm", .hidden = {8, 0}}).message(),
              HasSubstr("model.hidden[1]"));
  EXPECT_EQ(error({.type = "deepfm", .hidden = {1u << 20}}).code(),
            StatusCode::kInvalidArgument);
  EXPECT_OK(NewModel({.type = "deepfm", .hidden = {}}, schema));  // FM + a linear layer
}

TEST(NewModelTest, SequenceModelsCheckTheirPairsAndSizes) {
  const Schema schema = ParseSchemaOrDie(R"(
fields:
  - {name: user, type: categorical}
  - {name: item, type: categorical}
  - {name: cat, type: categorical}
  - {name: hist, type: sequence, table: item, max_len: 5}
  - {name: hist_cats, type: sequence, table: cat, max_len: 5}
)");
  auto error = [&](ModelConfig config) { return NewModel(config, schema).status(); };
  EXPECT_OK(NewModel({.type = "din"}, schema));
  EXPECT_OK(NewModel({.type = "bst", .embedding_dim = 8, .layers = 2, .heads = 4}, schema));
  EXPECT_THAT(error({.type = "din", .attention = {{.sequence = "nope", .target = "item"}}})
                  .message(),
              HasSubstr("model.attention.nope"));
  EXPECT_THAT(error({.type = "din", .attention = {{.sequence = "hist", .target = "cat"}}})
                  .message(),
              HasSubstr("share its table"));
  EXPECT_THAT(error({.type = "din", .attention = {{.sequence = "hist", .target = "item"},
                                                  {.sequence = "hist", .target = "item"}}})
                  .message(),
              HasSubstr("named twice"));
  EXPECT_THAT(error({.type = "din", .attention_hidden = {0}}).message(),
              HasSubstr("model.attention_hidden[0]"));
  EXPECT_THAT(error({.type = "din", .attention_weights = "tanh"}).message(),
              HasSubstr("model.attention_weights"));
  EXPECT_THAT(error({.type = "bst", .embedding_dim = 16, .heads = 3}).message(),
              HasSubstr("model.heads"));
  EXPECT_THAT(error({.type = "bst", .dropout = 1.0f}).message(), HasSubstr("model.dropout"));
  // Nothing to attend: no sequence shares a table with a categorical field.
  const Schema flat = ParseSchemaOrDie(R"(
fields:
  - {name: user, type: categorical}
  - {name: hist, type: sequence, table: other, max_len: 5}
)");
  EXPECT_THAT(NewModel({.type = "din"}, flat).status().message(), HasSubstr("sequence field"));
}

TEST(NewModelTest, SequenceModelsPoolUnpairedSequencesAndNameTheirBlocks) {
  const Schema schema = ParseSchemaOrDie(R"(
fields:
  - {name: item, type: categorical}
  - {name: hist, type: sequence, table: item, max_len: 5}
  - {name: hist_cats, type: sequence, table: cat, max_len: 5}
)");
  std::unique_ptr<Model> din = MakeModel({.type = "din", .hidden = {4}}, schema);
  std::vector<std::string> names;
  for (const DenseBlock& block : din->dense_blocks()) names.push_back(block.name);
  EXPECT_THAT(names, ::testing::ElementsAre("bias", "attention.hist.0.weight",
                                            "attention.hist.0.bias", "attention.hist.1.weight",
                                            "attention.hist.1.bias", "attention.hist.2.weight",
                                            "attention.hist.2.bias", "mlp.0.weight",
                                            "mlp.0.bias", "mlp.1.weight", "mlp.1.bias"));
  std::unique_ptr<Model> bst =
      MakeModel({.type = "bst", .embedding_dim = 4, .hidden = {4}, .heads = 2}, schema);
  EXPECT_EQ(bst->dense_blocks()[1].name, "bst.hist.position");
  EXPECT_EQ(bst->dense_blocks()[1].size, 6u * 4u);  // positions 0 (target) .. max_len
  EXPECT_EQ(bst->dense_blocks()[2].name, "bst.hist.0.attention.query.weight");
}

TEST(NewModelTest, RowDimIsTheWeightPlusTheFactorVector) {
  const Schema schema = ParseSchemaOrDie(kSchema);
  EXPECT_EQ(MakeModel({.type = "lr", .embedding_dim = 8}, schema)->row_dim(), 1u);
  EXPECT_EQ(MakeModel({.type = "fm", .embedding_dim = 8}, schema)->row_dim(), 9u);
  EXPECT_EQ(MakeModel({.type = "deepfm", .embedding_dim = 4}, schema)->row_dim(), 5u);
}

TEST(DenseBlocksTest, NamesSizesAndInitialization) {
  const Schema schema = ParseSchemaOrDie(kSchema);  // 5 fields, 2 numeric
  std::vector<std::string> names;
  std::vector<uint64_t> sizes;
  std::vector<float> stddevs;
  const std::unique_ptr<Model> deepfm =
      MakeModel({.type = "deepfm", .embedding_dim = 4, .hidden = {8, 2}}, schema);
  for (const DenseBlock& b : deepfm->dense_blocks()) {
    names.push_back(b.name);
    sizes.push_back(b.size);
    stddevs.push_back(b.init_stddev);
  }
  EXPECT_THAT(names, ElementsAre("bias", "numeric.w", "numeric.v", "mlp.0.weight", "mlp.0.bias",
                                 "mlp.1.weight", "mlp.1.bias", "mlp.2.weight", "mlp.2.bias"));
  EXPECT_THAT(sizes, ElementsAre(1, 2, 8, 20 * 8, 8, 8 * 2, 2, 2, 1));
  EXPECT_THAT(stddevs, Pointwise(FloatNear(1e-6f), {0.0f, 0.0f, 0.01f, std::sqrt(2.0f / 20), 0.0f,
                                                    0.5f, 0.0f, std::sqrt(0.5f), 0.0f}));

  names.clear();
  const std::unique_ptr<Model> fm = MakeModel({.type = "fm"}, schema);
  for (const DenseBlock& b : fm->dense_blocks()) {
    names.push_back(b.name);
  }
  EXPECT_THAT(names, ElementsAre("bias", "numeric.w", "numeric.v"));
}

TEST(DenseBlocksTest, NoNumericBlocksWithoutNumericFields) {
  const Schema schema = ParseSchemaOrDie("fields:\n  - {name: user, type: categorical}\n");
  for (const char* type : {"lr", "fm"}) {
    const std::unique_ptr<Model> model = MakeModel({.type = type}, schema);
    ASSERT_EQ(model->dense_blocks().size(), 1u) << type;
    EXPECT_EQ(model->dense_blocks()[0].name, "bias");
  }
}

TEST(LrModelTest, GoldenValues) {
  const Schema schema = ParseSchemaOrDie(kTinySchema);
  const std::unique_ptr<Model> model = MakeModel({.type = "lr"}, schema);
  Batch batch = TinyBatch(schema, 1);
  batch.tables[0].values << 0.5f, -1.0f;  // user 1, user 2
  batch.tables[1].values << 0.25f;        // item 10
  DenseParams dense(model->dense_blocks(), 1);
  dense.values = {{0.1f}, {2.0f}};  // bias, numeric.w
  std::vector<float> predictions(2);
  // logits: 0.1 + 0.5 + 0.25 + 2 * 0.5 = 1.85 and 0.1 - 1 + 2 * -1 = -2.9.
  const float loss = model->TrainStep(&batch, dense.in(), dense.out(), predictions);
  EXPECT_NEAR(loss, 0.0997991f, 1e-6);
  EXPECT_THAT(predictions, Pointwise(FloatNear(1e-6f), {0.864127f, 0.0521536f}));
  // dlogits = (p - y) / 2 = -0.0679364, 0.0260768.
  EXPECT_THAT(Row(batch.tables[0].grads, 0), ElementsAre(FloatNear(-0.0679364f, 1e-6f)));
  EXPECT_THAT(Row(batch.tables[0].grads, 1), ElementsAre(FloatNear(0.0260768f, 1e-6f)));
  EXPECT_THAT(Row(batch.tables[1].grads, 0), ElementsAre(FloatNear(-0.0679364f, 1e-6f)));
  EXPECT_THAT(dense.grads[0], ElementsAre(FloatNear(-0.0418597f, 1e-6f)));
  EXPECT_THAT(dense.grads[1], ElementsAre(FloatNear(-0.0600450f, 1e-6f)));
}

TEST(FmModelTest, GoldenValues) {
  const Schema schema = ParseSchemaOrDie(kTinySchema);
  const std::unique_ptr<Model> model = MakeModel({.type = "fm", .embedding_dim = 2}, schema);
  Batch batch = TinyBatch(schema, 3);
  batch.tables[0].values << 0.5f, 1, 2,  // user 1: w, v
      -1, 0, 1;                          // user 2
  batch.tables[1].values << 0.25f, 0.5f, -1;  // item 10
  DenseParams dense(model->dense_blocks(), 1);
  dense.values = {{0.1f}, {2.0f}, {1.0f, 0.0f}};  // bias, numeric.w, numeric.v
  std::vector<float> predictions(2);
  // Example 0: linear 1.85; pairs <u,i> + <u,p> + <i,p> = -1.5 + 0.5 + 0.25
  // with the price vector 0.5 * (1, 0): logit 1.1. Example 1: -2.9 + 0.
  const float loss = model->TrainStep(&batch, dense.in(), dense.out(), predictions);
  EXPECT_NEAR(loss, 0.170449f, 1e-6);
  EXPECT_THAT(predictions, Pointwise(FloatNear(1e-6f), {0.750260f, 0.0521536f}));
  // dlogits -0.124870, 0.0260768; dv_f = dlogit * (sum - v_f).
  EXPECT_THAT(Row(batch.tables[0].grads, 0),
              Pointwise(FloatNear(1e-6f), {-0.124870f, -0.124870f, 0.124870f}));
  EXPECT_THAT(Row(batch.tables[0].grads, 1),
              Pointwise(FloatNear(1e-6f), {0.0260768f, -0.0260768f, 0.0f}));
  EXPECT_THAT(Row(batch.tables[1].grads, 0),
              Pointwise(FloatNear(1e-6f), {-0.124870f, -0.187305f, -0.249740f}));
  EXPECT_THAT(dense.grads[0], ElementsAre(FloatNear(-0.0987932f, 1e-6f)));
  EXPECT_THAT(dense.grads[1], ElementsAre(FloatNear(-0.0885118f, 1e-6f)));
  EXPECT_THAT(dense.grads[2], Pointwise(FloatNear(1e-6f), {-0.0936525f, -0.0885118f}));
}

// Six examples over kSchema with missing fields, sequences of 0..3 keys and
// keys shared between item and hist.
Batch MixedBatch(const Schema& schema, uint32_t row_dim, uint64_t seed) {
  Batch batch = MakeBatch(schema,
                          {{.label = 1, .keys = {{1}, {10}, {11, 12}}, .numeric = {0.5f, 1}},
                           {.label = 0, .keys = {{2}, {}, {10}}, .numeric = {-1, 0}},
                           {.label = 0, .keys = {{}, {11}, {}}, .numeric = {0, 2}},
                           {.label = 1, .keys = {{1}, {12}, {10, 11, 12}}, .numeric = {2, -1}},
                           {.label = 0, .keys = {{3}, {13}, {13, 13}}, .numeric = {0.1f, 0.3f}},
                           {.label = 1, .keys = {{2}, {10}, {}}, .numeric = {1, 1}}},
                          row_dim);
  FillRandomValues(&batch, seed, 0.5f);
  return batch;
}

std::vector<float> PredictAll(Model& model, const Batch& batch, const DenseParams& dense) {
  std::vector<float> predictions(batch.size);
  model.Predict(batch, dense.in(), predictions);
  return predictions;
}

class AllModelsTest : public ::testing::TestWithParam<const char*> {
 protected:
  AllModelsTest()
      : schema_(ParseSchemaOrDie(kSchema)),
        config_({.type = GetParam(), .embedding_dim = 3, .hidden = {5, 4}, .seed = 7}),
        model_(MakeModel(config_, schema_)),
        dense_(model_->dense_blocks(), 3, 0.1f) {}

  const Schema schema_;
  const ModelConfig config_;
  std::unique_ptr<Model> model_;
  DenseParams dense_;
};

TEST_P(AllModelsTest, PredictEqualsTrainStepPredictionsAndIsDeterministic) {
  Batch batch = MixedBatch(schema_, model_->row_dim(), 1);
  std::vector<float> predictions(batch.size);
  const float loss = model_->TrainStep(&batch, dense_.in(), dense_.out(), predictions);
  EXPECT_GT(loss, 0.0f);
  EXPECT_EQ(PredictAll(*model_, batch, dense_), predictions);
  const std::unique_ptr<Model> other = MakeModel(config_, schema_);
  EXPECT_EQ(PredictAll(*other, batch, dense_), predictions);
  for (float p : predictions) EXPECT_TRUE(p > 0.0f && p < 1.0f) << p;
}

TEST_P(AllModelsTest, GradientsAreSizedPerUniqueKey) {
  Batch batch = MixedBatch(schema_, model_->row_dim(), 1);
  std::vector<float> predictions(batch.size);
  (void)model_->TrainStep(&batch, dense_.in(), dense_.out(), predictions);
  for (const TableBatch& table : batch.tables) {
    EXPECT_EQ(table.grads.rows(), static_cast<Eigen::Index>(table.keys.size()));
    EXPECT_EQ(table.grads.cols(), model_->row_dim());
    EXPECT_TRUE(table.grads.allFinite());
  }
  for (const std::vector<float>& g : dense_.grads) {
    for (float x : g) EXPECT_TRUE(std::isfinite(x));
  }
}

TEST_P(AllModelsTest, AMissingFieldContributesNothing) {
  // Example 2 has no user and no hist. Giving it an all-zero user row (a
  // present key whose parameters are zero) must not change its prediction,
  // nor must dropping a field's FieldBatch altogether.
  Batch batch = MixedBatch(schema_, model_->row_dim(), 2);
  const std::vector<float> expected = PredictAll(*model_, batch, dense_);

  Batch zero_user = batch;
  zero_user.tables[0].keys.push_back(99);
  zero_user.tables[0].values.conservativeResize(zero_user.tables[0].values.rows() + 1,
                                                Eigen::NoChange);
  zero_user.tables[0].values.bottomRows(1).setZero();
  FieldBatch& user = zero_user.fields[0];
  user.rows.insert(user.rows.begin() + user.offsets[2],
                   static_cast<uint32_t>(zero_user.tables[0].keys.size() - 1));
  for (size_t i = 3; i < user.offsets.size(); ++i) ++user.offsets[i];
  EXPECT_THAT(PredictAll(*model_, zero_user, dense_), Pointwise(FloatNear(1e-6f), expected));

  // Without the user field at all, examples whose user was missing keep
  // their predictions.
  Batch no_user = batch;
  no_user.fields.erase(no_user.fields.begin());
  EXPECT_NEAR(PredictAll(*model_, no_user, dense_)[2], expected[2], 1e-6);
}

TEST_P(AllModelsTest, ASequenceIsMeanPooled) {
  // hist = {a, b} scores like a single key whose row is the mean of a and b.
  const uint32_t dim = model_->row_dim();
  Batch pair = MakeBatch(schema_, {{.label = 1, .keys = {{1}, {10}, {11, 12}}, .numeric = {1, 2}}},
                         dim);
  FillRandomValues(&pair, 5, 0.5f);
  Batch mean = MakeBatch(schema_, {{.label = 1, .keys = {{1}, {10}, {13}}, .numeric = {1, 2}}},
                         dim);
  mean.tables[0].values = pair.tables[0].values;
  mean.tables[1].values.row(0) = pair.tables[1].values.row(0);
  mean.tables[1].values.row(1) =
      0.5f * (pair.tables[1].values.row(1) + pair.tables[1].values.row(2));
  EXPECT_NEAR(PredictAll(*model_, pair, dense_)[0], PredictAll(*model_, mean, dense_)[0], 1e-6);
}

TEST_P(AllModelsTest, ScratchBuffersFollowTheBatchSize) {
  // A model reused across batch sizes computes what a fresh model computes.
  Batch big = MixedBatch(schema_, model_->row_dim(), 3);
  Batch small = MakeBatch(schema_, {{.label = 1, .keys = {{1}, {10}, {10}}, .numeric = {1, 0}}},
                          model_->row_dim());
  FillRandomValues(&small, 4, 0.5f);
  std::vector<float> p_big(big.size), p_small(1);
  (void)model_->TrainStep(&big, dense_.in(), dense_.out(), p_big);
  const float loss = model_->TrainStep(&small, dense_.in(), dense_.out(), p_small);
  const std::vector<std::vector<float>> grads = dense_.grads;

  const std::unique_ptr<Model> fresh = MakeModel(config_, schema_);
  Batch small_again = small;
  std::vector<float> p_fresh(1);
  EXPECT_EQ(fresh->TrainStep(&small_again, dense_.in(), dense_.out(), p_fresh), loss);
  EXPECT_EQ(p_fresh, p_small);
  EXPECT_EQ(dense_.grads, grads);
  EXPECT_EQ(small_again.tables[1].grads, small.tables[1].grads);
}

INSTANTIATE_TEST_SUITE_P(Models, AllModelsTest, ::testing::Values("lr", "fm", "deepfm"));

}  // namespace
}  // namespace tessera::models
