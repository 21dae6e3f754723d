// `tessera local`: a real cluster of processes talking ZeroMQ over
// tcp://127.0.0.1, started, inspected and stopped the way a user would.
#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/e2e/process_util.h"
#include "tests/testing/temp_dir.h"
#include "tools/cli/cluster_file.h"

namespace tessera {
namespace {

using std::chrono::seconds;
using ::testing::HasSubstr;
using testing::HttpGet;
using testing::PollUntil;
using testing::ProcessAlive;
using testing::WaitForExit;

class LocalClusterTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_FALSE(testing::TesseraBinary().empty()) << "TESSERA_BIN unset"; }

  // `tessera local --servers 2 --workers 2 --program smoke ... -- program_args`.
  pid_t StartLocal(const std::vector<std::string>& program_args, bool own_group = false) {
    std::vector<std::string> argv = {testing::TesseraBinary(),
                                     "local",
                                     "--servers=2",
                                     "--workers=2",
                                     "--program=smoke",
                                     "--output-dir=" + dir_.path().string(),
                                     "--startup-timeout-s=60"};
    if (!program_args.empty()) argv.push_back("--");
    argv.insert(argv.end(), program_args.begin(), program_args.end());
    return testing::Spawn(argv, dir_.File("launcher.log"), own_group);
  }

  // Polls until cluster.json appears; false if the launcher exits first or
  // the deadline passes.
  bool WaitForClusterFile(pid_t launcher) {
    PollUntil([&] { return std::filesystem::exists(ClusterFile()) || !ProcessAlive(launcher); },
              seconds(60));
    return std::filesystem::exists(ClusterFile());
  }

  // Polls the log until both smoke workers verified everything and hold the
  // cluster, so a stop signal cannot land in the middle of their requests.
  bool WaitForHolding() {
    return PollUntil(
        [&] {
          const std::string log = LauncherLog();
          size_t n = 0;
          for (size_t p = 0; (p = log.find("smoke: holding", p)) != std::string::npos; ++p) ++n;
          return n == 2;
        },
        seconds(60));
  }

  std::string LauncherLog() const { return testing::ReadFileOrEmpty(dir_.File("launcher.log")); }

  std::string ClusterFile() const { return dir_.File("cluster.json"); }

  std::vector<cli::ClusterNodeRecord> ReadCluster() const {
    StatusOr<std::vector<cli::ClusterNodeRecord>> nodes =
        cli::ParseClusterJson(testing::ReadFileOrEmpty(ClusterFile()));
    EXPECT_TRUE(nodes.ok()) << nodes.status();
    return nodes.ok() ? *nodes : std::vector<cli::ClusterNodeRecord>{};
  }

  void ExpectAllGone(const std::vector<cli::ClusterNodeRecord>& nodes) {
    for (const cli::ClusterNodeRecord& node : nodes) {
      pid_t pid = static_cast<pid_t>(node.pid);
      EXPECT_TRUE(PollUntil([pid] { return !ProcessAlive(pid); }, seconds(15)))
          << RoleName(node.role) << "/" << node.id << " (pid " << pid << ") is still running";
    }
  }

  testing::TempDir dir_;
};

// One scheduler, then servers and workers by rank, each its own process.
void ExpectFiveNodes(const std::vector<cli::ClusterNodeRecord>& nodes) {
  ASSERT_EQ(nodes.size(), 5u);
  const std::vector<std::pair<Role, int>> want = {{Role::kScheduler, 0},
                                                  {Role::kServer, 0},
                                                  {Role::kServer, 1},
                                                  {Role::kWorker, 0},
                                                  {Role::kWorker, 1}};
  std::set<int64_t> pids;
  for (size_t i = 0; i < nodes.size(); ++i) {
    EXPECT_EQ(nodes[i].role, want[i].first) << "entry " << i;
    EXPECT_EQ(nodes[i].id, want[i].second) << "entry " << i;
    EXPECT_THAT(nodes[i].addr, ::testing::StartsWith("tcp://127.0.0.1:"));
    EXPECT_GT(nodes[i].metrics_port, 0);
    pids.insert(nodes[i].pid);
  }
  EXPECT_EQ(pids.size(), 5u) << "every node is a separate process";
}

TEST(LocalClusterTestHelpers, ParseClusterJsonRejectsMalformedInput) {
  EXPECT_FALSE(cli::ParseClusterJson("").ok());
  EXPECT_FALSE(cli::ParseClusterJson("{\"nodes\": [{\"role\": \"server\"}]}").ok());
  EXPECT_FALSE(cli::ParseClusterJson("{\"nodes\": [{\"role\": \"boss\", \"id\": 0, \"pid\": 1, "
                                     "\"addr\": \"x\", \"metrics_port\": 1}]}")
                   .ok());
}

TEST_F(LocalClusterTest, SmokeProgramSucceedsAndRecordsEveryNode) {
  pid_t launcher = StartLocal({});
  ASSERT_GT(launcher, 0);
  std::optional<int> status = WaitForExit(launcher, seconds(90));
  ASSERT_TRUE(status.has_value()) << "tessera local did not finish";
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << LauncherLog();
  std::vector<cli::ClusterNodeRecord> nodes = ReadCluster();
  ExpectFiveNodes(nodes);
  ExpectAllGone(nodes);
}

TEST_F(LocalClusterTest, NodesServeMetricsWhileRunningAndSigtermStopsThemAll) {
  pid_t launcher = StartLocal({"--hold"});
  ASSERT_GT(launcher, 0);
  ASSERT_TRUE(WaitForClusterFile(launcher)) << LauncherLog();
  std::vector<cli::ClusterNodeRecord> nodes = ReadCluster();
  ExpectFiveNodes(nodes);
  ASSERT_TRUE(WaitForHolding()) << LauncherLog();

  for (const cli::ClusterNodeRecord& node : nodes) {
    SCOPED_TRACE(std::string(RoleName(node.role)) + "/" + std::to_string(node.id));
    EXPECT_TRUE(ProcessAlive(static_cast<pid_t>(node.pid)));
    std::optional<testing::HttpResult> health = HttpGet(node.metrics_port, "/healthz");
    ASSERT_TRUE(health.has_value());
    EXPECT_EQ(health->status, 200);
    EXPECT_TRUE(PollUntil(
        [&] {
          std::optional<testing::HttpResult> ready = HttpGet(node.metrics_port, "/readyz");
          return ready.has_value() && ready->status == 200;
        },
        seconds(30)));
    std::optional<testing::HttpResult> metrics = HttpGet(node.metrics_port, "/metrics");
    ASSERT_TRUE(metrics.has_value());
    EXPECT_EQ(metrics->status, 200);
    if (node.role == Role::kServer) {
      EXPECT_THAT(metrics->body, HasSubstr("tessera_server_requests_total"));
    }
  }

  ASSERT_EQ(::kill(launcher, SIGTERM), 0);
  std::optional<int> status = WaitForExit(launcher, seconds(60));
  ASSERT_TRUE(status.has_value()) << "launcher ignored SIGTERM";
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 128 + SIGTERM) << LauncherLog();
  ExpectAllGone(nodes);
}

// Ctrl-C in a shell signals the whole job: the launcher and every node get
// SIGINT, and the launcher forwards SIGTERM on top. Nodes must still stop in
// order (exit 0), not treat the second signal as "kill me now".
TEST_F(LocalClusterTest, CtrlCOnTheWholeProcessGroupStopsEveryNodeInOrder) {
  pid_t launcher = StartLocal({"--hold"}, /*own_group=*/true);
  ASSERT_GT(launcher, 0);
  ASSERT_TRUE(WaitForClusterFile(launcher)) << LauncherLog();
  std::vector<cli::ClusterNodeRecord> nodes = ReadCluster();
  ASSERT_TRUE(WaitForHolding()) << LauncherLog();
  ASSERT_EQ(::kill(-launcher, SIGINT), 0);
  std::optional<int> status = WaitForExit(launcher, seconds(60));
  ASSERT_TRUE(status.has_value()) << "launcher ignored SIGINT";
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 128 + SIGINT) << LauncherLog();
  std::string log = LauncherLog();
  size_t clean_exits = 0;
  for (size_t pos = 0; (pos = log.find(") ended: exit 0\n", pos)) != std::string::npos; ++pos) {
    ++clean_exits;
  }
  EXPECT_EQ(clean_exits, 5u) << log;
  ExpectAllGone(nodes);
}

TEST_F(LocalClusterTest, KilledLauncherTakesItsNodesWithIt) {
  pid_t launcher = StartLocal({"--hold"});
  ASSERT_GT(launcher, 0);
  ASSERT_TRUE(WaitForClusterFile(launcher)) << LauncherLog();
  std::vector<cli::ClusterNodeRecord> nodes = ReadCluster();
  ASSERT_EQ(nodes.size(), 5u);
  ASSERT_EQ(::kill(launcher, SIGKILL), 0);  // no chance to forward anything
  ASSERT_TRUE(WaitForExit(launcher, seconds(10)).has_value());
  ExpectAllGone(nodes);  // PR_SET_PDEATHSIG
}

TEST_F(LocalClusterTest, FailingProgramFailsTheLauncher) {
  pid_t launcher = StartLocal({"--no-such-flag"});
  ASSERT_GT(launcher, 0);
  std::optional<int> status = WaitForExit(launcher, seconds(90));
  ASSERT_TRUE(status.has_value()) << "tessera local did not finish";
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 1) << LauncherLog();
  // The scheduler may have been stopped before it recorded the cluster.
  if (std::filesystem::exists(ClusterFile())) ExpectAllGone(ReadCluster());
}

}  // namespace
}  // namespace tessera
