// Serving a really trained model: a small din and deepfm trained in one
// process (tests/testing/in_proc_training.h) on generated data and saved;
// the REST predict route, fed the test split as JSON instances, returns
// exactly the predictions `tessera eval` writes for the same saved model.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/metrics.h"
#include "models/eval_runner.h"
#include "models/gen/gen.h"
#include "models/job_config.h"
#include "serving/rest_api.h"
#include "serving/served_model.h"
#include "tests/serving/serving_test_util.h"
#include "tests/testing/in_proc_training.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"
#include "worker/model_saver.h"

namespace tessera::serving {
namespace {

using nlohmann::json;

std::vector<std::string> Lines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

class TrainedModelServingTest : public ::testing::TestWithParam<std::string> {};

TEST_P(TrainedModelServingTest, RestPredictionsEqualEvalsOnTheTestSplit) {
  tessera::testing::TempDir dir;
  models::gen::GenOptions gen;
  gen.out = dir.path().string();
  gen.rows = 4000;
  gen.users = 200;
  gen.items = 300;
  gen.seed = 5;
  ASSERT_OK(models::gen::Generate(gen));
  ASSERT_OK_AND_ASSIGN(models::JobConfig job,
                       models::ParseJobConfig(
                           "data: {schema: schema.yaml, train: train.tsv, eval: test.tsv}\n"
                           "model: {embedding_dim: 4, hidden: [16, 8]}\n"
                           "train: {batch_size: 256}\n",
                           "job.yaml", dir.path().string(),
                           {"model.type=" + GetParam(), "cluster.servers=2", "cluster.workers=1"}));
  const std::string model_dir = dir.File("model");
  {
    SimulatedClock clock;
    ASSERT_OK_AND_ASSIGN(auto training,
                         tessera::testing::InProcTraining::Run(job, 256 << 10, &clock));
    ASSERT_OK(worker::SaveModel(training->cluster().worker(0), job, training->schema(),
                                training->model(), model_dir,
                                DeadlineIn(std::chrono::seconds(60))));
  }
  const std::string predictions = dir.File("pred.tsv");
  ASSERT_OK(
      models::EvaluateSavedModel(model_dir, {job.data.eval}, {.predictions_path = predictions})
          .status());
  const std::vector<std::string> expected = Lines(predictions);

  MetricsRegistry metrics;
  RestApi api({.name = "ctr"}, &metrics);
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<ServedModel> served, ServedModel::Load(model_dir, ""));
  const models::Schema schema = served->schema();
  api.SetModel(std::move(served));
  const std::vector<std::string> lines = Lines(job.data.eval);
  ASSERT_EQ(lines.size(), expected.size());
  std::vector<double> got;
  for (size_t begin = 0; begin < lines.size(); begin += 300) {
    json instances = json::array();
    for (size_t i = begin; i < std::min(lines.size(), begin + 300); ++i) {
      instances.push_back(testing::InstanceOfLine(schema, lines[i]));
    }
    const HttpResponse r =
        api.Handle({"POST", "/v1/models/ctr:predict", json{{"instances", instances}}.dump()});
    ASSERT_EQ(r.status, 200) << r.body.substr(0, 300);
    const json reply = json::parse(r.body);
    for (const json& p : reply["predictions"]) got.push_back(p.get<double>());
  }
  ASSERT_EQ(got.size(), expected.size());
  for (size_t i = 0; i < got.size(); ++i) {
    int label;
    float p;
    ASSERT_EQ(std::sscanf(expected[i].c_str(), "%d\t%f", &label, &p), 2);
    EXPECT_NEAR(got[i], p, 1e-6) << "line " << i + 1;
  }
}

INSTANTIATE_TEST_SUITE_P(Models, TrainedModelServingTest, ::testing::Values("deepfm", "din"));

}  // namespace
}  // namespace tessera::serving
