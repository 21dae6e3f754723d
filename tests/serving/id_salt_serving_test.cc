// The id salt end to end in one process: a small lr trained with a salt
// (tests/testing/in_proc_training.h) and saved holds only salted keys and
// the salt's fingerprint; serving it with the same salt predicts exactly
// what `tessera eval` does; serving it without the salt or with another one
// is refused with an error naming both fingerprints.
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

TEST(IdSaltServingTest, SaltedTrainAndServeAgreeAndAnotherSaltIsRefused) {
  tessera::testing::TempDir dir;
  models::gen::GenOptions gen;
  gen.out = dir.path().string();
  gen.rows = 2000;
  gen.users = 100;
  gen.items = 150;
  gen.seed = 11;
  ASSERT_OK(models::gen::Generate(gen));
  ASSERT_OK_AND_ASSIGN(models::JobConfig job,
                       models::ParseJobConfig(
                           "data: {schema: schema.yaml, train: train.tsv, eval: test.tsv}\n"
                           "model: {type: lr, embedding_dim: 4}\n"
                           "train: {batch_size: 256}\n"
                           "cluster: {servers: 2, workers: 1}\n",
                           "job.yaml", dir.path().string(), {}));
  const models::FeatureHasher salt = models::FeatureHasher::FromSalt("a long random salt");
  job.id_hasher = salt;
  const std::string model_dir = dir.File("model");
  {
    SimulatedClock clock;
    ASSERT_OK_AND_ASSIGN(auto training,
                         tessera::testing::InProcTraining::Run(job, 128 << 10, &clock));
    ASSERT_TRUE(training->schema().hasher() == salt);
    ASSERT_OK(worker::SaveModel(training->cluster().worker(0), job, training->schema(),
                                training->model(), model_dir,
                                DeadlineIn(std::chrono::seconds(60))));
  }
  ASSERT_OK_AND_ASSIGN(models::ModelManifest manifest, models::ReadManifest(model_dir));
  EXPECT_EQ(manifest.id_salt_fingerprint, salt.fingerprint());

  // The saved rows are keyed by salted hashes only.
  ASSERT_OK_AND_ASSIGN(models::SavedModel saved,
                       models::LoadSavedModel(model_dir, /*with_state=*/false));
  const int user_table = saved.schema.TableIndex("user_id");
  ASSERT_GE(user_table, 0);
  size_t salted = 0, plain = 0;
  for (int u = 0; u <= 100; ++u) {  // the generator's users
    std::string id = "u";
    id.append(std::to_string(u));
    salted += saved.sparse[user_table].index.contains(salt.Hash(user_table, id)) ? 1 : 0;
    plain += saved.sparse[user_table].index.contains(models::HashFeature(user_table, id)) ? 1 : 0;
  }
  EXPECT_EQ(plain, 0u);
  EXPECT_EQ(salted, saved.sparse[user_table].num_rows());

  // Serving without the salt, or with another one, is refused.
  const Status none = ServedModel::Load(model_dir, "").status();
  EXPECT_EQ(none.code(), StatusCode::kFailedPrecondition) << none;
  EXPECT_NE(none.message().find(salt.fingerprint()), absl::string_view::npos) << none;
  const Status other =
      ServedModel::Load(model_dir, "", models::FeatureHasher::FromSalt("another salt")).status();
  EXPECT_EQ(other.code(), StatusCode::kFailedPrecondition) << other;
  EXPECT_NE(other.message().find("another id salt"), absl::string_view::npos) << other;

  // With the salt: serving equals eval, line by line.
  const std::string predictions = dir.File("pred.tsv");
  ASSERT_OK(models::EvaluateSavedModel(model_dir, {job.data.eval},
                                       {.predictions_path = predictions, .id_hasher = salt})
                .status());
  const std::vector<std::string> expected = Lines(predictions);
  MetricsRegistry metrics;
  RestApi api({.name = "ctr"}, &metrics);
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<ServedModel> served,
                       ServedModel::Load(model_dir, "", salt));
  const models::Schema schema = served->schema();
  api.SetModel(std::move(served));
  const std::vector<std::string> lines = Lines(job.data.eval);
  ASSERT_EQ(lines.size(), expected.size());
  ASSERT_FALSE(lines.empty());
  json instances = json::array();
  for (const std::string& line : lines) instances.push_back(testing::InstanceOfLine(schema, line));
  const HttpResponse r =
      api.Handle({"POST", "/v1/models/ctr:predict", json{{"instances", instances}}.dump()});
  ASSERT_EQ(r.status, 200) << r.body.substr(0, 300);
  const json reply = json::parse(r.body);
  ASSERT_EQ(reply["predictions"].size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    int label;
    float p;
    ASSERT_EQ(std::sscanf(expected[i].c_str(), "%d\t%f", &label, &p), 2);
    EXPECT_NEAR(reply["predictions"][i].get<double>(), p, 1e-6) << "line " << i + 1;
  }
}

}  // namespace
}  // namespace tessera::serving
