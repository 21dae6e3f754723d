#include "models/eval_runner.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "models/feature_hash.h"
#include "tests/models/saved_model_test_util.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace tessera::models {
namespace {

using ::tessera::testing::TempDir;

// A saved deepfm model that knows users u0..u29 and items i0..i29, and a
// data file of 200 examples, some with users and items it never saw.
class EvalRunnerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    model_dir_ = dir_.File("model");
    std::vector<std::vector<Key>> keys(2);
    for (int k = 0; k < 30; ++k) {
      keys[0].push_back(HashFeature(0, absl::StrCat("u", k)));
      keys[1].push_back(HashFeature(1, absl::StrCat("i", k)));
    }
    ModelConfig config;
    config.type = "deepfm";
    config.embedding_dim = 4;
    config.hidden = {8};
    ASSERT_OK(testing::WriteHandModel(model_dir_, config, 2, keys).status());
    data_ = dir_.File("test.tsv");
    std::ofstream out(data_);
    for (int i = 0; i < 200; ++i) {
      out << (i % 3 == 0 ? 1 : 0) << "\tu" << i % 40 << "\ti" << (i * 7) % 35 << "\t"
          << (i % 5) * 1.5 << "\ti" << i % 30 << ",i" << (i + 3) % 30 << "\n";
    }
    out << "not a valid line\n";  // one bad line of 201: under the 1% default
  }

  TempDir dir_;
  std::string model_dir_;
  std::string data_;
};

std::vector<std::string> Lines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

TEST_F(EvalRunnerTest, ScoresEveryExampleAndWritesThePredictions) {
  const std::string predictions = dir_.File("pred.tsv");
  ASSERT_OK_AND_ASSIGN(EvalReport r, EvaluateSavedModel(model_dir_, {data_},
                                                        {.batch_size = 64,
                                                         .predictions_path = predictions}));
  EXPECT_EQ(r.metrics.count, 200u);
  EXPECT_EQ(r.data.bad_lines, 1u);
  EXPECT_EQ(r.group_field, "user_id");  // the training job's
  ASSERT_TRUE(r.metrics.auc && r.metrics.logloss && r.metrics.gauc && r.metrics.calibration);
  EXPECT_NEAR(r.metrics.ctr, 67.0 / 200, 1e-9);

  // The file: one line per example, in order, with the labels of the data.
  const std::vector<std::string> lines = Lines(predictions);
  ASSERT_EQ(lines.size(), 200u);
  std::vector<float> p, y;
  for (size_t i = 0; i < lines.size(); ++i) {
    int label;
    float prediction;
    ASSERT_EQ(std::sscanf(lines[i].c_str(), "%d\t%f", &label, &prediction), 2) << lines[i];
    EXPECT_EQ(label, i % 3 == 0 ? 1 : 0);
    EXPECT_GT(prediction, 0.0f);
    EXPECT_LT(prediction, 1.0f);
    p.push_back(prediction);
    y.push_back(static_cast<float>(label));
  }
  const EvalMetrics from_file = Evaluate(p, y, {});
  EXPECT_EQ(*from_file.auc, *r.metrics.auc);  // 9 digits: the floats exactly
  EXPECT_EQ(*from_file.logloss, *r.metrics.logloss);
  EXPECT_FALSE(std::ifstream(predictions + ".tmp").good());
}

TEST_F(EvalRunnerTest, BatchSizeDoesNotChangeTheScores) {
  ASSERT_OK_AND_ASSIGN(EvalReport one, EvaluateSavedModel(model_dir_, {data_}, {.batch_size = 1}));
  ASSERT_OK_AND_ASSIGN(EvalReport all, EvaluateSavedModel(model_dir_, {data_}, {.batch_size = 500}));
  EXPECT_NEAR(*one.metrics.auc, *all.metrics.auc, 1e-6);
  EXPECT_NEAR(*one.metrics.logloss, *all.metrics.logloss, 1e-6);
  ASSERT_OK_AND_ASSIGN(EvalReport none,
                       EvaluateSavedModel(model_dir_, {data_}, {.group_field = "none"}));
  EXPECT_FALSE(none.metrics.gauc.has_value());
}

TEST_F(EvalRunnerTest, ErrorsOfTheModelTheDataAndTheFlags) {
  EXPECT_EQ(EvaluateSavedModel(dir_.File("nope"), {data_}, {}).status().code(),
            StatusCode::kNotFound);
  EXPECT_EQ(EvaluateSavedModel(model_dir_, {dir_.File("missing.tsv")}, {}).status().code(),
            StatusCode::kNotFound);
  EXPECT_EQ(EvaluateSavedModel(model_dir_, {data_}, {.max_bad_ratio = 0.001}).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(EvaluateSavedModel(model_dir_, {data_}, {.group_field = "price"}).status().code(),
            StatusCode::kInvalidArgument);

  EXPECT_EQ(RunEval({"--data", data_}).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(RunEval({"--model", model_dir_, "--data"}).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(RunEval({"--model", model_dir_, "--data", data_, "--batch-size", "0"}).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(RunEval({"--model", model_dir_, "--bogus", "1"}).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(RunEval({"stray"}).code(), StatusCode::kInvalidArgument);
  EXPECT_OK(RunEval({"--help"}));
}

TEST_F(EvalRunnerTest, CommandLineTakesSeveralDataFilesAndEqualsForms) {
  const std::string predictions = dir_.File("p.tsv");
  EXPECT_OK(RunEval({"--model=" + model_dir_, "--data", data_, data_, "--batch-size=7",
                     "--predictions", predictions}));
  EXPECT_EQ(Lines(predictions).size(), 400u);
}

// Parses every line of an --explain file (keeping the order of the keys).
std::vector<nlohmann::ordered_json> JsonLines(const std::string& path) {
  std::vector<nlohmann::ordered_json> docs;
  for (const std::string& line : Lines(path)) {
    nlohmann::ordered_json doc =
        nlohmann::ordered_json::parse(line, nullptr, /*allow_exceptions=*/false);
    EXPECT_FALSE(doc.is_discarded()) << line;
    docs.push_back(std::move(doc));
  }
  return docs;
}

TEST_F(EvalRunnerTest, ExplainWritesOneJsonLinePerExampleInInputOrder) {
  // A second file with a bad line and a short line among the examples, so
  // line numbers count every line of their file.
  const std::string second = dir_.File("second.tsv");
  {
    std::ofstream out(second);
    out << "1\tu1\ti1\t2\ti2,i3\n"
        << "x\tbad\n"
        << "0\tu2\n";
  }
  const std::string explain = dir_.File("explain.jsonl");
  const std::string predictions = dir_.File("pred.tsv");
  ASSERT_OK_AND_ASSIGN(EvalReport r,
                       EvaluateSavedModel(model_dir_, {data_, second},
                                          {.batch_size = 64,
                                           .predictions_path = predictions,
                                           .max_bad_ratio = 0.05,
                                           .explain_path = explain}));
  EXPECT_EQ(r.metrics.count, 202u);
  EXPECT_FALSE(std::ifstream(explain + ".tmp").good());
  const std::vector<nlohmann::ordered_json> docs = JsonLines(explain);
  const std::vector<std::string> pred_lines = Lines(predictions);
  ASSERT_EQ(docs.size(), 202u);
  ASSERT_EQ(pred_lines.size(), 202u);
  for (size_t i = 0; i < docs.size(); ++i) {
    const nlohmann::ordered_json& d = docs[i];
    const bool first = i < 200;
    EXPECT_EQ(d["file"], first ? data_ : second);
    EXPECT_EQ(d["line"], first ? i + 1 : (i == 200 ? 1 : 3));
    EXPECT_EQ(d["label"], first ? (i % 3 == 0 ? 1 : 0) : (i == 200 ? 1 : 0));
    // The prediction is exactly --predictions' (9 digits there).
    float prediction = 0;
    ASSERT_EQ(std::sscanf(pred_lines[i].c_str(), "%*d\t%f", &prediction), 1);
    EXPECT_EQ(d["prediction"].get<float>(), prediction) << i;
    const float logit = d["logit"].get<float>();
    EXPECT_NEAR(1.0 / (1.0 + std::exp(-static_cast<double>(logit))), prediction, 1e-6);
    // The fields by name, in schema order, summing with the bias to the logit.
    ASSERT_TRUE(d["fields"].is_object());
    std::vector<std::string> names;
    double sum = d["bias"].get<double>();
    for (const auto& [name, contribution] : d["fields"].items()) {
      names.push_back(name);
      sum += contribution.get<double>();
    }
    EXPECT_EQ(names, (std::vector<std::string>{"user_id", "item_id", "price", "hist"}));
    EXPECT_NEAR(sum, logit, 1e-4 * std::max(1.0f, std::fabs(logit))) << i;
    // deepfm has no attention.
    EXPECT_TRUE(d["attention"].is_object() && d["attention"].empty()) << d.dump();
  }
  // The raw JSON keeps the documented key order.
  EXPECT_EQ(Lines(explain)[0].rfind("{\"line\":1,\"file\":", 0), 0u) << Lines(explain)[0];
}

TEST_F(EvalRunnerTest, ExplainLimitExplainsOnlyTheFirstExamples) {
  const std::string explain = dir_.File("explain.jsonl");
  ASSERT_OK_AND_ASSIGN(EvalReport r,
                       EvaluateSavedModel(model_dir_, {data_},
                                          {.batch_size = 2, .explain_path = explain,
                                           .explain_limit = 5}));
  EXPECT_EQ(r.metrics.count, 200u);  // every example is still scored
  std::vector<nlohmann::ordered_json> docs = JsonLines(explain);
  ASSERT_EQ(docs.size(), 5u);
  for (size_t i = 0; i < docs.size(); ++i) EXPECT_EQ(docs[i]["line"], i + 1);

  ASSERT_OK(EvaluateSavedModel(model_dir_, {data_},
                               {.explain_path = explain, .explain_limit = 0}).status());
  EXPECT_TRUE(Lines(explain).empty());
  EXPECT_EQ(EvaluateSavedModel(model_dir_, {data_}, {.explain_path = explain, .explain_limit = -2})
                .status()
                .code(),
            StatusCode::kInvalidArgument);

  // The command line.
  EXPECT_OK(RunEval({"--model", model_dir_, "--data", data_, "--explain", explain,
                     "--explain-limit=3"}));
  EXPECT_EQ(Lines(explain).size(), 3u);
  EXPECT_OK(RunEval({"--model", model_dir_, "--data", data_, "--explain=" + explain}));
  EXPECT_EQ(Lines(explain).size(), 200u);
  EXPECT_EQ(RunEval({"--model", model_dir_, "--data", data_, "--explain-limit", "3"}).code(),
            StatusCode::kInvalidArgument);  // without --explain
  EXPECT_EQ(RunEval({"--model", model_dir_, "--data", data_, "--explain", explain,
                     "--explain-limit", "-1"})
                .code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(EvaluateSavedModel(model_dir_, {data_}, {.explain_path = dir_.File("no/such/dir/x")})
                .status()
                .code(),
            StatusCode::kUnavailable);
}

TEST(ExplanationJsonTest, PairsAttentionWeightsWithTheKeptTokens) {
  ASSERT_OK_AND_ASSIGN(const Schema schema, Schema::Parse(testing::kTestSchema, "test"));
  Explanation e;
  e.logit = 0.1f;
  e.bias = -0.25f;
  e.fields = {0.5f, -0.125f, 0.0f, -0.025f};
  // hist has max_len 3: of "i1,,i2,i3,i4" the model saw i2, i3, i4.
  e.attention.push_back({.field = 3, .weights = {0.25f, 0.5f, 0.125f}});
  const ExampleSource source{.file = "d.tsv", .line = 7, .text = "1\tu1\ti9\t3.5\ti1,,i2,i3,i4\r"};
  const std::string line = ExplanationJson(schema, source, 1.0f, 0.525f, e);
  EXPECT_EQ(line,
            "{\"line\":7,\"file\":\"d.tsv\",\"label\":1,\"prediction\":0.525,\"logit\":0.1,"
            "\"bias\":-0.25,\"fields\":{\"user_id\":0.5,\"item_id\":-0.125,\"price\":0.0,"
            "\"hist\":-0.025},\"attention\":{\"hist\":[{\"item\":\"i2\",\"weight\":0.25},"
            "{\"item\":\"i3\",\"weight\":0.5},{\"item\":\"i4\",\"weight\":0.125}]}}");

  // More weights than tokens (a model bug) and a short line: "item": null.
  const ExampleSource short_line{.file = "d.tsv", .line = 8, .text = "0\tu1"};
  e.attention[0].weights = {1.0f};
  const nlohmann::json doc = nlohmann::json::parse(ExplanationJson(schema, short_line, 0, 0.5f, e));
  EXPECT_TRUE(doc["attention"]["hist"][0]["item"].is_null());
  EXPECT_EQ(doc["label"], 0);
}

TEST(EvalReportTest, LineAndJson) {
  EvalReport r;
  r.model_dir = "m";
  r.metrics.count = 10;
  r.metrics.ctr = 0.1;
  r.metrics.auc = 0.75;
  r.metrics.logloss = 0.5;
  EXPECT_EQ(EvalReportLine(r).substr(0, 84),
            "eval: 10 examples, auc 0.7500, logloss 0.5000, gauc n/a, calibration n/a, ctr 0.1000");
  const std::string json = EvalReportJson(r);
  EXPECT_NE(json.find("\"auc\":0.75"), std::string::npos) << json;
  EXPECT_NE(json.find("\"gauc\":null"), std::string::npos) << json;
  EXPECT_NE(json.find("\"samples\":10"), std::string::npos) << json;
}

}  // namespace
}  // namespace tessera::models
