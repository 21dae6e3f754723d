// Worker failure as real processes: one scheduler, two servers and three
// workers started node by node (as Kubernetes runs them); one worker is
// killed with SIGKILL in the middle of training. The scheduler declares it
// dead after the 300 ms heartbeat timeout and hands its unfinished byte
// ranges to the other workers from its last acknowledged position; the job
// still finishes (every other node exits 0; worker 0 writes the model,
// train.json and eval.json), and every example is trained exactly once,
// except at most one batch: the dead worker's in-flight one. Once per
// consistency (async, ssp, sync), and once through `tessera train`.
//
// How examples are counted, so that a lost or repeated example shows: the
// generated log gets one more categorical column, `row_id`, unique per line
// ("r<line>"), in a table of its own. A training step pushes a gradient for
// every key of its batch (models compute one for every looked-up row), and
// a server row counts the pushes applied to it (update_count, saved with
// the model's optimizer state). So in the final model the row of line i has
// update count = the number of times line i was trained: no row or 0 if it
// was lost, 2 if it was trained twice. The servers apply the dead worker's
// pushes whether or not it lived to report them, so this counts what was
// applied, not what anyone reported.
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "models/feature_hash.h"
#include "models/saved_model.h"
#include "tests/e2e/process_cluster.h"
#include "tests/e2e/process_util.h"
#include "tests/testing/temp_dir.h"
#include "tools/cli/cluster_file.h"

namespace tessera {
namespace {

namespace fs = std::filesystem;
using std::chrono::seconds;

constexpr int kWorkers = 3;
constexpr int kServers = 2;
constexpr int kVictim = 1;        // worker 0 writes the final model: it must live
constexpr int kBatchSize = 128;
constexpr int kRows = 150000;     // tessera gen: 90% train, 10% test
constexpr int kTrainRows = kRows * 9 / 10;
// The victim is killed once it trained this many examples (about a tenth of
// its share), well before the data runs out.
constexpr double kKillAfterExamples = 5000;

class WorkerFailureE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(testing::TesseraBinary().empty()) << "TESSERA_BIN unset";
    ::unsetenv("TESSERA_SCHEDULER");
    ::setenv("TESSERA_CLUSTER_TOKEN", "worker-failure-e2e-token", 1);
    const pid_t gen = testing::Spawn({testing::TesseraBinary(), "gen", "--out", dir_.File("gen"),
                                      "--rows", std::to_string(kRows), "--users", "2000",
                                      "--items", "3000", "--seed", "11"},
                                     dir_.File("gen.log"));
    std::optional<int> status = testing::WaitForExit(gen, seconds(120));
    ASSERT_TRUE(status && WIFEXITED(*status) && WEXITSTATUS(*status) == 0)
        << testing::ReadFileOrEmpty(dir_.File("gen.log"));
    // The same log with a unique row_id column (see the file comment).
    fs::create_directories(dir_.File("data"));
    ASSERT_EQ(AddRowIds("gen/train.tsv", "data/train.tsv", "r"), kTrainRows);
    ASSERT_GT(AddRowIds("gen/test.tsv", "data/test.tsv", "t"), 0);
    std::ofstream(dir_.File("data/schema.yaml"))
        << testing::ReadFileOrEmpty(dir_.File("gen/schema.yaml"))
        << "  - {name: row_id, type: categorical}\n";
  }

  void TearDown() override {
    if (cluster_ != nullptr) cluster_->KillAll();
    if (train_ > 0 && testing::ProcessAlive(train_)) ::kill(train_, SIGKILL);
    if (train_ > 0) (void)testing::WaitForExit(train_, seconds(10));
  }

  // Copies `from` to `to` with "<prefix><line>" appended as a last column.
  // Returns the line count.
  int AddRowIds(const std::string& from, const std::string& to, const std::string& prefix) {
    std::ifstream in(dir_.File(from));
    std::ofstream out(dir_.File(to));
    int n = 0;
    for (std::string line; std::getline(in, line); ++n) {
      out << line << "\t" << prefix << n << "\n";
    }
    return n;
  }

  void WriteJob(const std::string& consistency) {
    std::ofstream job(dir_.File("job.yaml"));
    job << "data: {schema: " << dir_.File("data/schema.yaml") << ", train: "
        << dir_.File("data/train.tsv") << ", eval: " << dir_.File("data/test.tsv")
        << ", chunk_mb: 1}\n"
        << "model: {type: deepfm, embedding_dim: 8, hidden: [32]}\n"
        << "train: {batch_size: " << kBatchSize << ", consistency: " << consistency
        << ", progress_every_s: 1}\n"
        << "cluster: {servers: " << kServers << ", workers: " << kWorkers
        << ", heartbeat_interval_ms: 100, heartbeat_timeout_ms: 300}\n"
        << "output_dir: " << dir_.File("out") << "\n";
  }

  // Scheduler, servers, workers; returns when cluster.json lists them all.
  void StartCluster() {
    cluster_ = std::make_unique<testing::ProcessCluster>(
        testing::ProcessClusterSpec{.tessera = testing::TesseraBinary(),
                                    .dir = dir_.path().string(),
                                    .job = dir_.File("job.yaml"),
                                    .servers = kServers,
                                    .workers = kWorkers,
                                    .heartbeat_interval_ms = 100,
                                    .heartbeat_timeout_ms = 300});
    const Status started = cluster_->Start();
    ASSERT_TRUE(started.ok()) << started << Logs();
  }

  const cli::ClusterNodeRecord* Record(Role role, int id) const {
    for (const cli::ClusterNodeRecord& r : records_) {
      if (r.role == role && r.id == id) return &r;
    }
    return nullptr;
  }

  std::string Logs() const {
    std::string all = cluster_ != nullptr ? cluster_->Logs() : "";
    if (!train_log_.empty()) {
      all += "\n==== " + train_log_ + " ====\n" + testing::ReadFileOrEmpty(train_log_);
    }
    return all;
  }

  // Polls the victim's metrics until it trained kKillAfterExamples, then
  // SIGKILLs it. Returns the examples it had trained at the last look.
  double KillWhenTrained(int metrics_port, pid_t pid) {
    double trained = 0;
    EXPECT_TRUE(testing::PollUntil(
        [&] {
          trained = testing::ScrapeMetric(metrics_port, "tessera_worker_examples_total")
                        .value_or(-1);
          return trained >= kKillAfterExamples;
        },
        seconds(120)))
        << "the victim never trained " << kKillAfterExamples << " examples" << Logs();
    EXPECT_EQ(::kill(pid, SIGKILL), 0);
    return trained;
  }

  // The count (see the file comment): in the model in out/model, the row
  // of every training line was pushed exactly once, but for at most one
  // batch pushed twice.
  void ExpectEveryLineTrainedOnceButOneBatch(const std::string& label) {
    StatusOr<models::SavedModel> model = models::LoadSavedModel(dir_.File("out/model"), true);
    ASSERT_TRUE(model.ok()) << model.status();
    const int field = model->schema.FieldIndex("row_id");
    ASSERT_GE(field, 0);
    const int table = model->schema.fields()[static_cast<size_t>(field)].table_index;
    const models::SparseParams& rows = model->sparse[static_cast<size_t>(table)];
    ASSERT_TRUE(rows.has_counters);
    std::map<uint32_t, int> lines_by_count;  // update count -> training lines
    char token[16];  // not "r" + std::to_string(line): gcc 12's -Wrestrict misfires on it here
    for (int line = 0; line < kTrainRows; ++line) {
      std::snprintf(token, sizeof(token), "r%d", line);
      auto it = rows.index.find(models::HashFeature(table, token));
      ++lines_by_count[it == rows.index.end() ? 0 : rows.update_counts[it->second]];
    }
    EXPECT_EQ(rows.num_rows(), static_cast<size_t>(kTrainRows)) << "rows of no training line";
    EXPECT_EQ(lines_by_count[0], 0) << "examples lost";
    EXPECT_EQ(lines_by_count[1] + lines_by_count[2], kTrainRows) << "examples trained 3+ times";
    EXPECT_LE(lines_by_count[2], kBatchSize) << "more than one batch trained twice";
    std::printf("%s: %d lines trained once, %d twice (batch %d)\n", label.c_str(),
                lines_by_count[1], lines_by_count[2], kBatchSize);
  }

  testing::TempDir dir_;
  std::unique_ptr<testing::ProcessCluster> cluster_;  // if started
  pid_t train_ = -1;  // `tessera train`, if started
  std::string train_log_;
  std::vector<cli::ClusterNodeRecord> records_;  // of `tessera train`
};

class WorkerFailureByConsistencyTest : public WorkerFailureE2eTest,
                                       public ::testing::WithParamInterface<std::string> {};

TEST_P(WorkerFailureByConsistencyTest, KilledWorkersDataIsTrainedByOthersOnceButOneBatch) {
  WriteJob(GetParam());
  ASSERT_NO_FATAL_FAILURE(StartCluster());
  const testing::ProcessNode& victim = cluster_->worker(kVictim);
  // Killed once it has trained something (its metrics say so).
  const double trained_before_kill = KillWhenTrained(victim.metrics_port, victim.pid);
  ASSERT_FALSE(HasFailure());
  const auto killed_at = std::chrono::steady_clock::now();

  // Every other node finishes on its own and exits 0.
  for (testing::ProcessNode& node : cluster_->nodes()) {
    if (node.name == "worker-" + std::to_string(kVictim)) {
      std::optional<int> status = testing::WaitForExit(node.pid, seconds(10));
      ASSERT_TRUE(status && WIFSIGNALED(*status) && WTERMSIG(*status) == SIGKILL);
      node.pid = -1;
      continue;
    }
    std::optional<int> status = testing::WaitForExit(node.pid, seconds(180));
    ASSERT_TRUE(status.has_value()) << node.name << " did not finish" << Logs();
    EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << node.name << Logs();
    node.pid = -1;
  }
  const double recovery_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - killed_at).count();
  std::printf("job finished %.1f s after the kill (victim had trained %.0f examples)\n",
              recovery_s, trained_before_kill);
  const std::string scheduler_log = testing::ReadFileOrEmpty(dir_.File("scheduler.log"));
  EXPECT_NE(scheduler_log.find("worker/" + std::to_string(kVictim) + " missed heartbeats"),
            std::string::npos)
      << scheduler_log;
  EXPECT_TRUE(fs::exists(dir_.File("out/eval.json"))) << Logs();
  const std::string train_json = testing::ReadFileOrEmpty(dir_.File("out/train.json"));
  EXPECT_NE(train_json.find("\"workers_lost\": 1"), std::string::npos) << train_json;

  ExpectEveryLineTrainedOnceButOneBatch(GetParam());
}

INSTANTIATE_TEST_SUITE_P(Consistency, WorkerFailureByConsistencyTest,
                         ::testing::Values("async", "ssp", "sync"),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param;
                         });

// The same through `tessera train` (the local launcher), which must not stop
// the job when a worker other than worker 0 is killed.
TEST_F(WorkerFailureE2eTest, TesseraTrainFinishesAfterAWorkerIsKilled) {
  WriteJob("async");
  train_log_ = dir_.File("train.log");
  train_ = testing::Spawn({testing::TesseraBinary(), "train", dir_.File("job.yaml")}, train_log_);
  ASSERT_TRUE(testing::PollUntil(
      [&] { return fs::exists(dir_.File("out/cluster.json")) || !testing::ProcessAlive(train_); },
      seconds(120)))
      << Logs();
  StatusOr<std::vector<cli::ClusterNodeRecord>> records =
      cli::ParseClusterJson(testing::ReadFileOrEmpty(dir_.File("out/cluster.json")));
  ASSERT_TRUE(records.ok()) << records.status() << Logs();
  records_ = *records;
  const cli::ClusterNodeRecord* victim = Record(Role::kWorker, 2);
  ASSERT_NE(victim, nullptr);
  KillWhenTrained(victim->metrics_port, static_cast<pid_t>(victim->pid));
  ASSERT_FALSE(HasFailure());
  std::optional<int> status = testing::WaitForExit(train_, seconds(180));
  ASSERT_TRUE(status.has_value()) << "tessera train did not finish" << Logs();
  train_ = -1;
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << Logs();
  EXPECT_TRUE(fs::exists(dir_.File("out/eval.json"))) << Logs();
  ExpectEveryLineTrainedOnceButOneBatch("tessera train");
}

}  // namespace
}  // namespace tessera
