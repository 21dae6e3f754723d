#include "models/eval_runner.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

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
