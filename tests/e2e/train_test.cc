// `tessera gen` + `tessera train` + `tessera eval` as real processes: the
// README's main job, small. Also under mpirun.
#include <stdlib.h>
#include <sys/wait.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/e2e/process_util.h"
#include "tests/testing/temp_dir.h"

namespace tessera {
namespace {

using ::testing::HasSubstr;

class TrainE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(testing::TesseraBinary().empty()) << "TESSERA_BIN unset";
    ::unsetenv("TESSERA_CLUSTER_TOKEN");
    ::unsetenv("TESSERA_SCHEDULER");
    ASSERT_EQ(Run({testing::TesseraBinary(), "gen", "--out", dir_.File("data"), "--rows", "60000",
                   "--users", "1000", "--items", "2000", "--seed", "3"}),
              0)
        << output_;
    std::ofstream job(dir_.File("job.yaml"));
    job << "data: {schema: data/schema.yaml, train: data/train.tsv, eval: data/test.tsv, "
           "group_field: user_id, chunk_mb: 1}\n"
           "model: {type: deepfm, embedding_dim: 8, hidden: [32]}\n"
           "optimizer: {sparse: {type: adagrad, lr: 0.2}}\n"
           "train: {batch_size: 256, epochs: 2}\n"
           "cluster: {servers: 2, workers: 2}\n"
           "output_dir: out\n";
  }

  int Run(const std::vector<std::string>& argv, std::chrono::seconds timeout = std::chrono::seconds(240)) {
    const std::string log = dir_.File("run" + std::to_string(runs_++) + ".log");
    pid_t pid = testing::Spawn(argv, log);
    std::optional<int> status = testing::WaitForExit(pid, timeout);
    output_ = testing::ReadFileOrEmpty(log);
    if (!status || !WIFEXITED(*status)) return -1;
    return WEXITSTATUS(*status);
  }

  double JsonNumber(const std::string& path, const std::string& key) {
    const std::string text = testing::ReadFileOrEmpty(path);
    const size_t pos = text.find("\"" + key + "\"");
    if (pos == std::string::npos) return -1;
    return std::atof(text.c_str() + text.find(':', pos) + 1);
  }

  testing::TempDir dir_;
  std::string output_;
  int runs_ = 0;
};

TEST_F(TrainE2eTest, TrainWritesEvalTrainAndModelAndEvalAgrees) {
  ASSERT_EQ(Run({testing::TesseraBinary(), "train", dir_.File("job.yaml")}), 0) << output_;
  EXPECT_THAT(output_, HasSubstr("held-out AUC"));
  const double auc = JsonNumber(dir_.File("out/eval.json"), "auc");
  EXPECT_GT(auc, 0.56);  // see tests/cluster/train_cluster_test.cc for the thresholds
  EXPECT_EQ(JsonNumber(dir_.File("out/eval.json"), "samples"), 6000);
  EXPECT_EQ(JsonNumber(dir_.File("out/train.json"), "examples"), 2 * 54000);
  EXPECT_GT(JsonNumber(dir_.File("out/train.json"), "samples_per_s"), 0);
  EXPECT_THAT(testing::ReadFileOrEmpty(dir_.File("out/cluster.json")), HasSubstr("\"worker\""));

  ASSERT_EQ(Run({testing::TesseraBinary(), "eval", "--model", dir_.File("out/model"), "--data",
                 dir_.File("data/test.tsv")}),
            0)
      << output_;
  const size_t pos = output_.find("\"auc\":");
  ASSERT_NE(pos, std::string::npos) << output_;
  EXPECT_NEAR(std::atof(output_.c_str() + pos + 6), auc, 1e-5);
}

TEST_F(TrainE2eTest, BadJobKeysFailBeforeAnythingStarts) {
  EXPECT_EQ(Run({testing::TesseraBinary(), "train", dir_.File("job.yaml"), "--set",
                 "train.consistency=eventual"}),
            2);
  EXPECT_THAT(output_, HasSubstr("train.consistency must be one of async | ssp | sync"));
  EXPECT_EQ(Run({testing::TesseraBinary(), "train", dir_.File("job.yaml"), "--set",
                 "data.train=missing.tsv"}),
            2);
  EXPECT_THAT(output_, HasSubstr("missing.tsv"));
}

TEST_F(TrainE2eTest, TrainsUnderMpirun) {
  const char* mpirun = std::getenv("TESSERA_MPIRUN");
  if (mpirun == nullptr || mpirun[0] == '\0') GTEST_SKIP() << "TESSERA_MPIRUN unset";
  // 4 ranks: scheduler, 2 servers (from the job), 1 worker.
  ASSERT_EQ(Run({mpirun, "--allow-run-as-root", "--oversubscribe", "-np", "4",
                 testing::TesseraBinary(), "train", dir_.File("job.yaml"), "--set",
                 "train.consistency=sync"}),
            0)
      << output_;
  EXPECT_GT(JsonNumber(dir_.File("out/eval.json"), "auc"), 0.55);
  EXPECT_EQ(JsonNumber(dir_.File("out/train.json"), "examples"), 2 * 54000);
}

}  // namespace
}  // namespace tessera
