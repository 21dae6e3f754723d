// Publishing across a server's death and replacement, as real processes: a
// job that follows a directory and publishes deltas (full_every 1000) runs
// on 3 servers with replication 2; server 1 is SIGKILLed (its backup is
// promoted), a replacement takes rank 1 and, through the handoff, its slots
// back. The replacement's tables track no changes before their first
// capture, so a delta would miss the rows it took over: the first version
// the scheduler publishes after the handoff must be full, and the chain
// must load.
#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <optional>
#include <regex>
#include <string>

#include "gtest/gtest.h"
#include "models/model_versions.h"
#include "models/saved_model.h"
#include "tests/e2e/process_cluster.h"
#include "tests/e2e/process_util.h"
#include "tests/e2e/publish_util.h"
#include "tests/testing/temp_dir.h"

namespace tessera {
namespace {

namespace fs = std::filesystem;
using std::chrono::seconds;

constexpr int kVictim = 1;

// Drops `from` into the followed directory as `name` (written as .name,
// then renamed, so the follower never sees a partial file).
void Drop(const std::string& from, const std::string& dir, const std::string& name) {
  fs::copy_file(from, dir + "/." + name);
  fs::rename(dir + "/." + name, dir + "/" + name);
}

TEST(HandoffPublishE2eTest, TheFirstVersionAfterAHandoffIsFull) {
  testing::TempDir dir;
  ASSERT_FALSE(testing::TesseraBinary().empty()) << "TESSERA_BIN unset";
  ::unsetenv("TESSERA_SCHEDULER");
  ::setenv("TESSERA_CLUSTER_TOKEN", "handoff-publish-e2e-token", 1);
  ASSERT_EQ(testing::RunToExit({testing::TesseraBinary(), "gen", "--out", dir.File("gen"), "--rows",
                                "40000", "--users", "2000", "--items", "3000", "--seed", "5"},
                               dir.File("gen.log"), seconds(120)),
            0)
      << testing::ReadFileOrEmpty(dir.File("gen.log"));
  fs::create_directories(dir.File("incoming"));
  fs::create_directories(dir.File("run"));
  const std::string pub = dir.File("pub");
  std::ofstream(dir.File("run/job.yaml"))
      << "data: {schema: " << dir.File("gen/schema.yaml") << ", train: " << dir.File("incoming")
      << ", follow: true}\n"
      << "model: {type: deepfm, embedding_dim: 8, hidden: [32]}\n"
      << "train: {batch_size: 128}\n"
      << "cluster: {servers: 3, workers: 2, replication: 2, heartbeat_interval_ms: 100, "
         "heartbeat_timeout_ms: 300}\n"
      << "publish: {model_dir: " << pub << ", interval_s: 0.5, full_every: 1000, keep: 0}\n"
      << "output_dir: " << dir.File("run/out") << "\n";
  testing::ProcessCluster cluster({.tessera = testing::TesseraBinary(),
                                   .dir = dir.File("run"),
                                   .job = dir.File("run/job.yaml"),
                                   .servers = 3,
                                   .workers = 2,
                                   .heartbeat_interval_ms = 100,
                                   .heartbeat_timeout_ms = 300});
  const Status started = cluster.Start();
  ASSERT_TRUE(started.ok()) << started << cluster.Logs();
  const pid_t scheduler = cluster.scheduler().pid;

  Drop(dir.File("gen/train.tsv"), dir.File("incoming"), "part-1.tsv");
  ASSERT_TRUE(testing::WaitForVersionTrainedFile(pub, "part-1.tsv", scheduler, seconds(120)))
      << cluster.Logs();

  testing::ProcessNode& victim = cluster.server(kVictim);
  ASSERT_EQ(::kill(victim.pid, SIGKILL), 0);
  ASSERT_TRUE(testing::WaitForExit(victim.pid, seconds(10)).has_value());
  victim.pid = -1;
  const std::string scheduler_log = cluster.LogPath(cluster.scheduler());
  ASSERT_TRUE(testing::PollUntil(
      [&] {
        return testing::ScrapeMetric(cluster.scheduler().metrics_port,
                                     "tessera_scheduler_last_recovery_seconds")
                   .value_or(0) > 0;
      },
      seconds(30)))
      << "no failover" << cluster.Logs();
  ASSERT_TRUE(cluster.StartServer(kVictim)) << cluster.Logs();
  ASSERT_TRUE(testing::PollUntil(
      [&] {
        return testing::ReadFileOrEmpty(scheduler_log).find("serves its slots again") !=
               std::string::npos;
      },
      seconds(60)))
      << "no handoff" << cluster.Logs();

  Drop(dir.File("gen/test.tsv"), dir.File("incoming"), "part-2.tsv");
  const std::optional<uint64_t> last =
      testing::WaitForVersionTrainedFile(pub, "part-2.tsv", scheduler, seconds(120));
  ASSERT_TRUE(last.has_value()) << cluster.Logs();

  // Deltas before the kill; the first version after the handoff is full.
  const std::string log = testing::ReadFileOrEmpty(scheduler_log);
  const size_t handoff = log.find("serves its slots again");
  const size_t handoff_started = log.find("handoff");  // its first line
  EXPECT_NE(log.substr(0, handoff_started).find(" (delta)"), std::string::npos) << log;
  static const std::regex published(R"(published version (\d+) \((full|delta)\))");
  std::smatch first_after;
  const std::string after = log.substr(handoff);
  ASSERT_TRUE(std::regex_search(after, first_after, published)) << log;
  EXPECT_EQ(first_after[2].str(), "full") << "version " << first_after[1] << "\n" << log;
  const StatusOr<models::SavedModel> model = models::LoadModelVersion(pub, *last, false);
  EXPECT_TRUE(model.ok()) << model.status();

  ::kill(scheduler, SIGTERM);
  EXPECT_TRUE(cluster.WaitAll(seconds(120))) << cluster.Logs();
}

}  // namespace
}  // namespace tessera
