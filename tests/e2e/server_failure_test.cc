// Server failure as real processes: one scheduler, three servers and two
// workers started node by node, `cluster.replication: 2` (each shard has a
// backup on the next server), heartbeat every 100 ms, timeout 300 ms.
// Server 1 is killed with SIGKILL in the middle of training. The scheduler
// declares it dead and promotes its backup (server 2), whose copy of its
// rows becomes the primary one; the workers resend what was in flight to
// it, with operation ids that make a resent push apply once. The job must
// finish (every other node exits 0), the scheduler must report the
// failover (log and tessera_scheduler_last_recovery_seconds), the final
// AUC must be within 0.003 of the same job run without the kill, and no
// update may be lost or applied twice.
//
// How updates are counted (as in worker_failure_test.cc): the generated
// log gets one more categorical column, `row_id`, unique per line, in a
// table of its own. A training step pushes a gradient for every key of its
// batch and a server row counts the pushes applied to it (update_count,
// replicated with the row and saved with the model). No worker dies, so
// every line is trained exactly once: in the final model every line's
// row_id row must exist with update count 1. A push acknowledged by server
// 1 but missing from its backup would show as 0 (or a missing row), a
// resent push applied twice as 2.
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

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

constexpr int kWorkers = 2;
constexpr int kServers = 3;
constexpr int kVictim = 1;
constexpr int kBatchSize = 128;
constexpr int kRows = 150000;  // tessera gen: 90% train, 10% test
constexpr int kTrainRows = kRows * 9 / 10;
// Server 1 is killed once worker 0 trained this many examples (about a
// fifth of its share), well before the data runs out.
constexpr double kKillAfterExamples = 15000;
constexpr double kMaxAucDifference = 0.003;

// The outcome of one run of the job.
struct RunResult {
  double auc = -1;
  double recovery_s = -1;  // tessera_scheduler_last_recovery_seconds (kill runs)
};

class ServerFailureE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(testing::TesseraBinary().empty()) << "TESSERA_BIN unset";
    ::unsetenv("TESSERA_SCHEDULER");
    ::setenv("TESSERA_CLUSTER_TOKEN", "server-failure-e2e-token", 1);
    const pid_t gen = testing::Spawn({testing::TesseraBinary(), "gen", "--out", dir_.File("gen"),
                                      "--rows", std::to_string(kRows), "--users", "2000",
                                      "--items", "3000", "--seed", "13"},
                                     dir_.File("gen.log"));
    std::optional<int> status = testing::WaitForExit(gen, seconds(120));
    ASSERT_TRUE(status && WIFEXITED(*status) && WEXITSTATUS(*status) == 0)
        << testing::ReadFileOrEmpty(dir_.File("gen.log"));
    fs::create_directories(dir_.File("data"));
    ASSERT_EQ(AddRowIds("gen/train.tsv", "data/train.tsv", "r"), kTrainRows);
    ASSERT_GT(AddRowIds("gen/test.tsv", "data/test.tsv", "t"), 0);
    std::ofstream(dir_.File("data/schema.yaml"))
        << testing::ReadFileOrEmpty(dir_.File("gen/schema.yaml"))
        << "  - {name: row_id, type: categorical}\n";
  }

  void TearDown() override { KillAll(); }

  void KillAll() {
    for (auto& [run, cluster] : clusters_) cluster->KillAll();
    if (train_ > 0 && testing::ProcessAlive(train_)) ::kill(train_, SIGKILL);
    if (train_ > 0) (void)testing::WaitForExit(train_, seconds(10));
    train_ = -1;
  }

  // Copies `from` to `to` with "<prefix><line>" appended as a last column.
  int AddRowIds(const std::string& from, const std::string& to, const std::string& prefix) {
    std::ifstream in(dir_.File(from));
    std::ofstream out(dir_.File(to));
    int n = 0;
    for (std::string line; std::getline(in, line); ++n) {
      out << line << "\t" << prefix << n << "\n";
    }
    return n;
  }

  // Sync: every step waits for both workers, which makes runs reproducible
  // enough for the 0.003 bound (with and without the kill, the AUC measured
  // here agreed to 5 decimals); async runs differ by the order of pushes.
  void WriteJob(const std::string& run) {
    std::ofstream job(dir_.File(run + "/job.yaml"));
    job << "data: {schema: " << dir_.File("data/schema.yaml") << ", train: "
        << dir_.File("data/train.tsv") << ", eval: " << dir_.File("data/test.tsv")
        << ", chunk_mb: 1}\n"
        << "model: {type: deepfm, embedding_dim: 8, hidden: [32]}\n"
        << "train: {batch_size: " << kBatchSize << ", consistency: sync, progress_every_s: 1}\n"
        << "cluster: {servers: " << kServers << ", workers: " << kWorkers
        << ", replication: 2, heartbeat_interval_ms: 100, heartbeat_timeout_ms: 300}\n"
        << "output_dir: " << dir_.File(run + "/out") << "\n";
  }

  // Scheduler, servers, workers of run `run` (a directory); returns when
  // cluster.json lists them all.
  void StartCluster(const std::string& run) {
    std::unique_ptr<testing::ProcessCluster>& cluster = clusters_[run];
    cluster = std::make_unique<testing::ProcessCluster>(
        testing::ProcessClusterSpec{.tessera = testing::TesseraBinary(),
                                    .dir = dir_.File(run),
                                    .job = dir_.File(run + "/job.yaml"),
                                    .servers = kServers,
                                    .workers = kWorkers,
                                    .heartbeat_interval_ms = 100,
                                    .heartbeat_timeout_ms = 300});
    const Status started = cluster->Start();
    ASSERT_TRUE(started.ok()) << started << Logs();
  }

  const cli::ClusterNodeRecord* Record(Role role, int id) const {
    for (const cli::ClusterNodeRecord& r : records_) {
      if (r.role == role && r.id == id) return &r;
    }
    return nullptr;
  }

  // A counter or gauge from a node's /metrics (-1 if unreadable).
  static double Metric(int port, const std::string& name) {
    return testing::ScrapeMetric(port, name).value_or(-1);
  }

  std::string Logs() const {
    std::string all;
    for (const auto& [run, cluster] : clusters_) all += cluster->Logs();
    if (!train_log_.empty()) {
      all += "\n==== " + train_log_ + " ====\n" + testing::ReadFileOrEmpty(train_log_);
    }
    return all;
  }

  // Every node of `cluster` still running (the victim was reaped) exits 0.
  void ExpectNodesExitZero(testing::ProcessCluster& cluster) {
    for (testing::ProcessNode& node : cluster.nodes()) {
      if (node.pid <= 0) continue;
      const std::string name = cluster.spec().dir + ": " + node.name;
      std::optional<int> status = testing::WaitForExit(node.pid, seconds(120));
      ASSERT_TRUE(status.has_value()) << name << " did not finish" << Logs();
      EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << name << Logs();
      node.pid = -1;
    }
  }

  double Auc(const std::string& run) const {
    const std::string text = testing::ReadFileOrEmpty(dir_.File(run + "/out/eval.json"));
    nlohmann::json eval = nlohmann::json::parse(text, nullptr, false);
    if (eval.is_discarded() || !eval.contains("auc") || !eval["auc"].is_number()) return -1;
    return eval["auc"].get<double>();
  }

  // Runs the job in directory `run`; with `kill`, SIGKILLs server kVictim
  // once worker 0 trained kKillAfterExamples.
  RunResult RunJob(const std::string& run, bool kill) {
    RunResult result;
    fs::create_directories(dir_.File(run));
    WriteJob(run);
    StartCluster(run);
    if (::testing::Test::HasFatalFailure()) return result;
    testing::ProcessCluster& cluster = *clusters_[run];
    if (kill) {
      const testing::ProcessNode& worker0 = cluster.worker(0);
      const testing::ProcessNode& scheduler = cluster.scheduler();
      testing::ProcessNode& victim = cluster.server(kVictim);
      double trained = 0;
      EXPECT_TRUE(testing::PollUntil(
          [&] {
            trained = Metric(worker0.metrics_port, "tessera_worker_examples_total");
            return trained >= kKillAfterExamples;
          },
          seconds(120)))
          << "worker 0 never trained " << kKillAfterExamples << " examples" << Logs();
      EXPECT_EQ(::kill(victim.pid, SIGKILL), 0);
      std::optional<int> status = testing::WaitForExit(victim.pid, seconds(10));
      EXPECT_TRUE(status && WIFSIGNALED(*status) && WTERMSIG(*status) == SIGKILL);
      victim.pid = -1;
      // The scheduler's own recovery figure, read while it still runs.
      EXPECT_TRUE(testing::PollUntil(
          [&] {
            result.recovery_s =
                Metric(scheduler.metrics_port, "tessera_scheduler_last_recovery_seconds");
            return result.recovery_s > 0;
          },
          seconds(30)))
          << "no failover reported by the scheduler" << Logs();
      std::printf("server %d killed after worker 0 trained %.0f examples; scheduler recovery %.3f s\n",
                  kVictim, trained, result.recovery_s);
    }
    ExpectNodesExitZero(cluster);
    result.auc = Auc(run);
    return result;
  }

  // In the model of `run`, every training line's row_id row exists and was
  // updated exactly once.
  void ExpectEveryLineTrainedOnce(const std::string& run) {
    StatusOr<models::SavedModel> model = models::LoadSavedModel(dir_.File(run + "/out/model"), true);
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
    EXPECT_EQ(lines_by_count[0], 0) << "updates lost";
    EXPECT_EQ(lines_by_count[1], kTrainRows) << "updates applied twice or more";
    std::printf("%s: %d lines trained once, %d never, %d more than once\n", run.c_str(),
                lines_by_count[1], lines_by_count[0], kTrainRows - lines_by_count[1] - lines_by_count[0]);
  }

  testing::TempDir dir_;
  std::map<std::string, std::unique_ptr<testing::ProcessCluster>> clusters_;  // by run
  pid_t train_ = -1;  // `tessera train`, if started
  std::string train_log_;
  std::vector<cli::ClusterNodeRecord> records_;  // of `tessera train`
};

TEST_F(ServerFailureE2eTest, KilledServersBackupTakesOverWithoutLosingAnUpdate) {
  const auto start = std::chrono::steady_clock::now();
  const RunResult reference = RunJob("reference", false);
  ASSERT_FALSE(HasFailure());
  KillAll();
  const auto reference_done = std::chrono::steady_clock::now();

  const RunResult failed = RunJob("kill", true);
  ASSERT_FALSE(HasFatalFailure());
  const std::string scheduler_log = testing::ReadFileOrEmpty(dir_.File("kill/scheduler.log"));
  EXPECT_NE(scheduler_log.find("failover: server/" + std::to_string(kVictim) + " is dead"),
            std::string::npos)
      << scheduler_log;
  EXPECT_GT(failed.recovery_s, 0);
  ASSERT_GT(reference.auc, 0) << Logs();
  ASSERT_GT(failed.auc, 0) << Logs();
  EXPECT_NEAR(failed.auc, reference.auc, kMaxAucDifference);
  std::printf("AUC %.5f without the kill, %.5f with it (difference %.5f); runs took %.1f s, %.1f s\n",
              reference.auc, failed.auc, failed.auc - reference.auc,
              std::chrono::duration<double>(reference_done - start).count(),
              std::chrono::duration<double>(std::chrono::steady_clock::now() - reference_done)
                  .count());
  ExpectEveryLineTrainedOnce("reference");
  ExpectEveryLineTrainedOnce("kill");
}

// The same through `tessera train` (the local launcher), which must not stop
// the job when a server is killed and the job has replication 2.
TEST_F(ServerFailureE2eTest, TesseraTrainFinishesAfterAServerIsKilled) {
  fs::create_directories(dir_.File("train"));
  WriteJob("train");
  train_log_ = dir_.File("train/train.log");
  train_ = testing::Spawn({testing::TesseraBinary(), "train", dir_.File("train/job.yaml")},
                          train_log_);
  ASSERT_TRUE(testing::PollUntil(
      [&] {
        return fs::exists(dir_.File("train/out/cluster.json")) || !testing::ProcessAlive(train_);
      },
      seconds(120)))
      << Logs();
  StatusOr<std::vector<cli::ClusterNodeRecord>> records =
      cli::ParseClusterJson(testing::ReadFileOrEmpty(dir_.File("train/out/cluster.json")));
  ASSERT_TRUE(records.ok()) << records.status() << Logs();
  records_ = *records;
  const cli::ClusterNodeRecord* worker0 = Record(Role::kWorker, 0);
  const cli::ClusterNodeRecord* victim = Record(Role::kServer, kVictim);
  ASSERT_TRUE(worker0 != nullptr && victim != nullptr);
  ASSERT_TRUE(testing::PollUntil(
      [&] {
        return Metric(worker0->metrics_port, "tessera_worker_examples_total") >= kKillAfterExamples;
      },
      seconds(120)))
      << Logs();
  ASSERT_EQ(::kill(static_cast<pid_t>(victim->pid), SIGKILL), 0);
  std::optional<int> status = testing::WaitForExit(train_, seconds(120));
  ASSERT_TRUE(status.has_value()) << "tessera train did not finish" << Logs();
  train_ = -1;
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << Logs();
  EXPECT_GT(Auc("train"), 0) << Logs();
  ExpectEveryLineTrainedOnce("train");
}

}  // namespace
}  // namespace tessera
