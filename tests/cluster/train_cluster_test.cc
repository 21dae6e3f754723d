// Training in one process: scheduler + servers + workers over InProcTransport
// on generated data with a planted click model. Checks that LR and DeepFM
// learn (held-out AUC well above chance, near the Bayes-optimal AUC), and
// that sync training is reproducible.
#include <gtest/gtest.h>

#include <fstream>
#include <thread>

#include "models/data_reader.h"
#include "models/gen/gen.h"
#include "models/job_config.h"
#include "models/table_plan.h"
#include "tests/testing/in_proc_training.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"
#include "worker/trainer.h"

namespace tessera {
namespace {


struct Dataset {
  testing::TempDir dir;
  models::gen::GenSummary summary;
};

// One generated dataset shared by the tests of this file (generation is the
// slow part; the seed fixes it).
const Dataset& Data() {
  static Dataset* data = [] {
    auto* d = new Dataset;
    models::gen::GenOptions o;
    o.out = d->dir.path().string();
    o.rows = 100000;
    o.users = 1000;
    o.items = 2000;
    o.seed = 7;
    StatusOr<models::gen::GenSummary> s = models::gen::Generate(o);
    EXPECT_TRUE(s.ok()) << s.status();
    if (s.ok()) d->summary = *s;
    return d;
  }();
  return *data;
}

struct RunResult {
  double auc = 0;
  double logloss = 0;
  uint64_t examples = 0;
};

StatusOr<RunResult> Train(const std::string& model, const std::string& consistency, int workers,
                          int servers, std::vector<std::string> extra = {}) {
  const Dataset& data = Data();
  const std::string dir = data.dir.path().string();
  std::vector<std::string> overrides = {"model.type=" + model, "train.consistency=" + consistency,
                                        "cluster.workers=" + std::to_string(workers),
                                        "cluster.servers=" + std::to_string(servers)};
  overrides.insert(overrides.end(), extra.begin(), extra.end());
  TESSERA_ASSIGN_OR_RETURN(
      models::JobConfig job,
      models::ParseJobConfig("data: {schema: schema.yaml, train: train.tsv, eval: test.tsv}\n"
                             "model: {embedding_dim: 8, hidden: [32, 16]}\n"
                             "train: {batch_size: 256}\n",
                             "job.yaml", dir, overrides));
  SimulatedClock clock;
  TESSERA_ASSIGN_OR_RETURN(auto training, testing::InProcTraining::Run(job, 512 << 10, &clock));
  RunResult r;
  r.examples = training->examples();
  TESSERA_ASSIGN_OR_RETURN(models::EvalMetrics eval, training->trainer(0).Evaluate({job.data.eval}));
  if (!eval.auc || !eval.logloss) return InternalError("no AUC");
  r.auc = *eval.auc;
  r.logloss = *eval.logloss;
  return r;
}

// Thresholds: on this data (90k training rows, 1000 users, 2000 items) the
// PyTorch reference (shared/bench/torch_ctr.py) reaches about 0.60 (lr) and
// 0.63 (deepfm) after 2 epochs, far below the Bayes-optimal AUC (~0.74): most
// of the planted signal is in the behaviour sequence (the DIN/BST issue) and
// in user x category interests that few rows per user cannot pin down. The
// thresholds sit ~0.03 below what these models reach here; a broken gradient
// or lost update gives ~0.5.
TEST(TrainClusterTest, LogisticRegressionLearnsThePlantedModel) {
  ASSERT_OK_AND_ASSIGN(RunResult r, Train("lr", "async", 2, 2,
                                          {"optimizer.sparse.lr=0.5", "train.epochs=2"}));
  const double bayes = Data().summary.bayes_auc;
  EXPECT_EQ(r.examples, 2 * Data().summary.train_rows);  // every example once per epoch
  EXPECT_GT(r.auc, 0.57) << "bayes " << bayes;
  EXPECT_LT(r.auc, bayes);
}

TEST(TrainClusterTest, DeepFmLearnsThePlantedModel) {
  ASSERT_OK_AND_ASSIGN(RunResult r, Train("deepfm", "async", 2, 2,
                                          {"optimizer.sparse.lr=0.2", "train.epochs=2"}));
  const double bayes = Data().summary.bayes_auc;
  EXPECT_EQ(r.examples, 2 * Data().summary.train_rows);
  EXPECT_GT(r.auc, 0.60) << "bayes " << bayes;
  EXPECT_LT(r.auc, bayes);
}

TEST(TrainClusterTest, SyncIsReproducibleAndWorkerCountBarelyMatters) {
  ASSERT_OK_AND_ASSIGN(RunResult a, Train("fm", "sync", 1, 2));
  ASSERT_OK_AND_ASSIGN(RunResult b, Train("fm", "sync", 1, 2));
  EXPECT_EQ(a.auc, b.auc);  // one worker, sync: bit-for-bit the same run
  EXPECT_EQ(a.logloss, b.logloss);
  // Two workers: same data per worker (static chunk order), and the servers
  // apply each step's pushes in rank order (turns from the step clock).
  ASSERT_OK_AND_ASSIGN(RunResult c, Train("fm", "sync", 2, 2));
  ASSERT_OK_AND_ASSIGN(RunResult d, Train("fm", "sync", 2, 2));
  EXPECT_EQ(c.auc, d.auc);
  EXPECT_EQ(c.logloss, d.logloss);
  EXPECT_NEAR(a.auc, c.auc, 0.02);
}

TEST(TrainClusterTest, SspEveryExampleOnce) {
  ASSERT_OK_AND_ASSIGN(RunResult r,
                       Train("lr", "ssp", 2, 1, {"train.staleness=1", "optimizer.sparse.lr=0.5"}));
  EXPECT_EQ(r.examples, Data().summary.train_rows);
  EXPECT_GT(r.auc, 0.56);
}

}  // namespace
}  // namespace tessera
