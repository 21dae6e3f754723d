// Every model's full gradient (the sparse rows of every table and every
// dense block) against central finite differences of the mean log loss.
#include <memory>
#include <ostream>
#include <span>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "models/model.h"
#include "tests/models/model_test_util.h"
#include "tests/testing/status_matchers.h"

namespace tessera::models {
namespace {

using testing::DenseParams;
using testing::ExpectGradientMatches;
using testing::FillRandomValues;
using testing::MakeBatch;
using testing::ParseSchemaOrDie;

constexpr char kWithNumeric[] = R"(
fields:
  - {name: user, type: categorical}
  - {name: price, type: numeric}
  - {name: item, type: categorical}
  - {name: hist, type: sequence, table: item, max_len: 5}
  - {name: age, type: numeric}
)";

constexpr char kCategoricalOnly[] = R"(
fields:
  - {name: user, type: categorical}
  - {name: item, type: categorical}
  - {name: hist, type: sequence, table: item, max_len: 5}
)";

// Small enough that few steps cross a ReLU kink of these tiny MLPs, large
// enough that the float loss's rounding (~1e-7) stays far below tolerance.
constexpr float kStep = 2e-3f;

struct GradientCase {
  std::string name;
  const char* schema;
  ModelConfig config;
};

void PrintTo(const GradientCase& c, std::ostream* os) { *os << c.name; }

class GradientCheckTest : public ::testing::TestWithParam<GradientCase> {};

TEST_P(GradientCheckTest, AnalyticGradientsMatchFiniteDifferences) {
  const GradientCase& c = GetParam();
  const Schema schema = ParseSchemaOrDie(c.schema);
  StatusOr<std::unique_ptr<Model>> made = NewModel(c.config, schema);
  ASSERT_OK(made);
  Model& model = **made;

  // Missing fields, sequences of 0..3 keys, keys shared by item and hist and
  // across examples, a repeated key inside one sequence.
  Batch batch = MakeBatch(schema,
                          {{.label = 1, .keys = {{1}, {10}, {11, 12}}, .numeric = {0.5f, 1}},
                           {.label = 0, .keys = {{2}, {}, {10}}, .numeric = {-1, 0}},
                           {.label = 0, .keys = {{}, {11}, {}}, .numeric = {0, 2}},
                           {.label = 1, .keys = {{1}, {12}, {10, 11, 12}}, .numeric = {2, -1}},
                           {.label = 0, .keys = {{3}, {13}, {13, 13}}, .numeric = {0.1f, 0.3f}},
                           {.label = 1, .keys = {{2}, {10}, {}}, .numeric = {1, 1}}},
                          model.row_dim());
  FillRandomValues(&batch, /*seed=*/21, /*stddev=*/0.5f);
  DenseParams dense(model.dense_blocks(), /*seed=*/22, /*zero_stddev=*/0.1f);

  std::vector<float> predictions(batch.size);
  (void)model.TrainStep(&batch, dense.in(), dense.out(), predictions);
  std::vector<RowMatrix> sparse_grads;
  for (const TableBatch& table : batch.tables) sparse_grads.push_back(table.grads);
  const std::vector<std::vector<float>> dense_grads = dense.grads;

  Batch probe = batch;  // the loss is evaluated on a copy: TrainStep rewrites grads
  auto loss = [&] {
    return static_cast<double>(model.TrainStep(&probe, dense.in(), dense.out(), predictions));
  };
  for (size_t t = 0; t < probe.tables.size(); ++t) {
    RowMatrix& values = probe.tables[t].values;
    ExpectGradientMatches({values.data(), static_cast<size_t>(values.size())},
                          {sparse_grads[t].data(), static_cast<size_t>(sparse_grads[t].size())},
                          loss, "table " + schema.tables()[t], kStep);
  }
  for (size_t b = 0; b < dense_grads.size(); ++b) {
    ExpectGradientMatches(dense.values[b], dense_grads[b], loss, model.dense_blocks()[b].name,
                          kStep);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Models, GradientCheckTest,
    ::testing::Values(
        GradientCase{"lr", kWithNumeric, {.type = "lr"}},
        GradientCase{"lr_categorical", kCategoricalOnly, {.type = "lr"}},
        GradientCase{"fm", kWithNumeric, {.type = "fm", .embedding_dim = 3}},
        GradientCase{"fm_categorical", kCategoricalOnly, {.type = "fm", .embedding_dim = 4}},
        GradientCase{"deepfm", kWithNumeric,
                     {.type = "deepfm", .embedding_dim = 3, .hidden = {6, 4}}},
        GradientCase{"deepfm_one_layer", kCategoricalOnly,
                     {.type = "deepfm", .embedding_dim = 2, .hidden = {5}}},
        GradientCase{"deepfm_linear", kWithNumeric,
                     {.type = "deepfm", .embedding_dim = 2, .hidden = {}}},
        GradientCase{"din_softmax", kCategoricalOnly,
                     {.type = "din", .embedding_dim = 3, .hidden = {5},
                      .attention = {{.sequence = "hist", .target = "item"}},
                      .attention_hidden = {4}, .attention_weights = "softmax"}},
        // (Configurations whose seeded values put no ReLU input within a
        // step of its kink: a kink crossed by both steps reads as a mismatch.)
        GradientCase{"din", kWithNumeric,
                     {.type = "din", .embedding_dim = 3, .hidden = {6, 4},
                      .attention_hidden = {4}, .attention_weights = "raw"}},
        GradientCase{"din_two_layer_unit", kWithNumeric,
                     {.type = "din", .embedding_dim = 2, .hidden = {6, 4},
                      .attention_hidden = {5, 3}}},
        GradientCase{"din_sigmoid", kWithNumeric,
                     {.type = "din", .embedding_dim = 3, .hidden = {6, 4},
                      .attention_hidden = {4}, .attention_weights = "sigmoid"}},
        GradientCase{"din_linear_unit", kWithNumeric,
                     {.type = "din", .embedding_dim = 3, .hidden = {5},
                      .attention_hidden = {}}},
        GradientCase{"din_fm", kCategoricalOnly,
                     {.type = "din", .embedding_dim = 3, .hidden = {5}, .fm = true,
                      .attention_hidden = {4}}},
        GradientCase{"bst", kWithNumeric,
                     {.type = "bst", .embedding_dim = 4, .hidden = {5}, .heads = 2,
                      .ffn_dim = 8}},
        GradientCase{"bst_two_layers_mean", kCategoricalOnly,
                     {.type = "bst", .embedding_dim = 4, .hidden = {5}, .fm = false,
                      .layers = 2, .heads = 1, .ffn_dim = 3, .bst_output = "mean"}},
        GradientCase{"bst_post_norm", kWithNumeric,
                     {.type = "bst", .embedding_dim = 4, .hidden = {5}, .heads = 2,
                      .ffn_dim = 8, .bst_norm = "post"}}),
    [](const ::testing::TestParamInfo<GradientCase>& info) { return info.param.name; });

}  // namespace
}  // namespace tessera::models
