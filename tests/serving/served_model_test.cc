// Serving scores exactly what `tessera eval` scores: the same saved model,
// the same rows (as TSV for eval, as JSON instances for serving).
#include "serving/served_model.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "models/eval_runner.h"
#include "tests/serving/serving_test_util.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace tessera::serving {
namespace {

using nlohmann::json;
using ::tessera::testing::TempDir;

std::vector<std::string> Lines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

class ServedModelTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    model_dir_ = dir_.File("model");
    ASSERT_OK(testing::WriteTestModel(model_dir_, GetParam()));
    data_ = dir_.File("test.tsv");
    std::ofstream out(data_);
    // Unseen users and items, missing fields, short lines, histories
    // longer than max_len (3) with empty tokens.
    for (int i = 0; i < 120; ++i) {
      out << (i % 3 == 0 ? 1 : 0) << "\tu" << i % 40 << "\t" << (i % 11 == 0 ? "" : "i")
          << (i % 11 == 0 ? "" : std::to_string((i * 7) % 35));
      if (i % 13 == 5) {  // short line
        out << "\n";
        continue;
      }
      out << "\t" << (i % 4 == 0 ? std::string() : std::to_string((i % 5) * 1.5 - 2)) << "\t";
      for (int h = 0; h < i % 6; ++h)
        out << (h ? "," : "") << (h == 2 ? "" : "i")
            << (h == 2 ? "" : std::to_string((i + h) % 33));
      out << "\n";
    }
  }

  TempDir dir_;
  std::string model_dir_;
  std::string data_;
};

TEST_P(ServedModelTest, PredictionsAndExplanationsEqualEvals) {
  const std::string predictions = dir_.File("pred.tsv");
  const std::string explanations = dir_.File("explain.jsonl");
  ASSERT_OK(models::EvaluateSavedModel(
                model_dir_, {data_},
                {.batch_size = 32, .predictions_path = predictions, .explain_path = explanations})
                .status());
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<ServedModel> served, ServedModel::Load(model_dir_, ""));
  EXPECT_EQ(served->version(), "1700000000");
  EXPECT_EQ(served->item_field(), "item_id");
  std::vector<json> instances;
  for (const std::string& line : Lines(data_)) {
    instances.push_back(testing::InstanceOfLine(served->schema(), line));
  }
  ScoreResult result;
  ASSERT_OK(served->Score(instances, "instances", /*explain=*/true, &result));
  const std::vector<std::string> eval_predictions = Lines(predictions);
  const std::vector<std::string> eval_explanations = Lines(explanations);
  ASSERT_EQ(eval_predictions.size(), instances.size());
  ASSERT_EQ(eval_explanations.size(), instances.size());
  ASSERT_EQ(result.predictions.size(), instances.size());
  ASSERT_EQ(result.explanations.size(), instances.size());
  for (size_t i = 0; i < instances.size(); ++i) {
    int label;
    float p;
    ASSERT_EQ(std::sscanf(eval_predictions[i].c_str(), "%d\t%f", &label, &p), 2);
    EXPECT_NEAR(result.predictions[i], p, 1e-6) << "row " << i;
    const json expected = json::parse(eval_explanations[i]);
    const json& got = result.explanations[i];
    EXPECT_NEAR(got["logit"].get<double>(), expected["logit"].get<double>(), 1e-6) << i;
    EXPECT_NEAR(got["bias"].get<double>(), expected["bias"].get<double>(), 1e-6) << i;
    for (const auto& [name, value] : expected["fields"].items()) {
      EXPECT_NEAR(got["fields"][name].get<double>(), value.get<double>(), 1e-6) << i << name;
    }
    ASSERT_EQ(got["attention"].size(), expected["attention"].size()) << i;
    for (const auto& [name, items] : expected["attention"].items()) {
      ASSERT_EQ(got["attention"][name].size(), items.size()) << i << name;
      for (size_t t = 0; t < items.size(); ++t) {
        EXPECT_EQ(got["attention"][name][t]["item"], items[t]["item"]) << i << name;
        EXPECT_NEAR(got["attention"][name][t]["weight"].get<double>(),
                    items[t]["weight"].get<double>(), 1e-6);
      }
    }
  }
}

TEST_P(ServedModelTest, BatchCompositionDoesNotChangeAScore) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<ServedModel> served, ServedModel::Load(model_dir_, ""));
  std::vector<json> instances;
  for (const std::string& line : Lines(data_)) {
    instances.push_back(testing::InstanceOfLine(served->schema(), line));
  }
  ScoreResult all;
  ASSERT_OK(served->Score(instances, "instances", false, &all));
  for (size_t i = 0; i < instances.size(); i += 17) {
    ScoreResult one;
    ASSERT_OK(served->Score(std::span<const json>(&instances[i], 1), "instances", false, &one));
    EXPECT_NEAR(one.predictions[0], all.predictions[i], 1e-6);
  }
  ScoreResult none;
  ASSERT_OK(served->Score({}, "instances", true, &none));
  EXPECT_TRUE(none.predictions.empty());
}

INSTANTIATE_TEST_SUITE_P(Models, ServedModelTest,
                         ::testing::Values("lr", "fm", "deepfm", "din", "bst"));

TEST(ServedModelLoadTest, ErrorsOfTheModelAndTheCatalog) {
  TempDir dir;
  EXPECT_EQ(ServedModel::Load(dir.File("nope"), "").status().code(), StatusCode::kNotFound);
  ASSERT_OK(testing::WriteTestModel(dir.File("model"), "deepfm"));
  EXPECT_EQ(ServedModel::Load(dir.File("model"), dir.File("none.tsv")).status().code(),
            StatusCode::kNotFound);
  const std::string bad = dir.File("bad.tsv");
  std::ofstream(bad) << "0\t\ti1\t1\t\n0\t\ti2\tabc\t\n";
  const Status s = ServedModel::Load(dir.File("model"), bad).status();
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), ::testing::HasSubstr("bad.tsv:2"));
  const std::string dup = dir.File("dup.tsv");
  std::ofstream(dup) << "0\t\ti1\t1\t\n0\t\ti1\t2\t\n";
  EXPECT_EQ(ServedModel::Load(dir.File("model"), dup).status().code(),
            StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace tessera::serving
