// The role commands as Kubernetes pods run them (deploy/k8s, docs/deploy.md),
// here as separate local processes: `tessera scheduler --job job.yaml`, two
// `tessera server --job job.yaml --rank R` and two `tessera worker --job
// job.yaml --rank R`, the members finding the scheduler through
// TESSERA_SCHEDULER (the scheduler Service's address in a pod). No cluster
// flag is given: sizes, heartbeats, tables and output_dir come from the job
// file. The job must finish with every node exiting 0 and leave eval.json
// (a sane AUC), train.json, model/ and cluster.json in output_dir.
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/e2e/process_util.h"
#include "tests/testing/temp_dir.h"
#include "tools/cli/cluster_file.h"

namespace tessera {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using std::chrono::seconds;

struct Node {
  std::string name;
  pid_t pid = -1;
  std::string log;
};

class RoleCommandsE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(testing::TesseraBinary().empty()) << "TESSERA_BIN unset";
    ::unsetenv("TESSERA_SCHEDULER");
    ::setenv("TESSERA_CLUSTER_TOKEN", "role-commands-e2e-token", 1);
    const pid_t gen = testing::Spawn({testing::TesseraBinary(), "gen", "--out", dir_.File("data"),
                                      "--rows", "60000", "--users", "1000", "--items", "2000",
                                      "--seed", "3"},
                                     dir_.File("gen.log"));
    std::optional<int> status = testing::WaitForExit(gen, seconds(120));
    ASSERT_TRUE(status && WIFEXITED(*status) && WEXITSTATUS(*status) == 0)
        << testing::ReadFileOrEmpty(dir_.File("gen.log"));
    // Relative paths: resolved against the job file's directory, as in a
    // ConfigMap mounted next to a data volume.
    std::ofstream job(dir_.File("job.yaml"));
    job << "data: {schema: data/schema.yaml, train: data/train.tsv, eval: data/test.tsv, "
           "chunk_mb: 1}\n"
           "model: {type: deepfm, embedding_dim: 8, hidden: [32]}\n"
           "optimizer: {sparse: {type: adagrad, lr: 0.2}}\n"
           "train: {batch_size: 256, epochs: 2}\n"
           "cluster: {servers: 2, workers: 2, heartbeat_interval_ms: 200, "
           "heartbeat_timeout_ms: 3000}\n"
           "output_dir: out\n";
  }

  void TearDown() override {
    for (Node& node : nodes_) {
      if (node.pid > 0 && testing::ProcessAlive(node.pid)) ::kill(node.pid, SIGKILL);
      if (node.pid > 0) (void)testing::WaitForExit(node.pid, seconds(10));
    }
  }

  // `tessera ROLE --job job.yaml` on loopback with free ports, plus `extra`.
  pid_t Start(const std::string& name, const std::string& role,
              const std::vector<std::string>& extra) {
    std::vector<std::string> argv = {testing::TesseraBinary(), role, "--job", dir_.File("job.yaml"),
                                     "--bind", "tcp://127.0.0.1:0", "--host", "127.0.0.1",
                                     "--metrics-host", "127.0.0.1", "--metrics-port", "0"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    Node node{name, -1, dir_.File(name + ".log")};
    node.pid = testing::Spawn(argv, node.log);
    nodes_.push_back(node);
    return node.pid;
  }

  std::string Logs() const {
    std::string text;
    for (const Node& node : nodes_) {
      text += "--- " + node.name + "\n" + testing::ReadFileOrEmpty(node.log);
    }
    return text;
  }

  double JsonNumber(const std::string& path, const std::string& key) {
    const std::string text = testing::ReadFileOrEmpty(path);
    const size_t pos = text.find("\"" + key + "\"");
    if (pos == std::string::npos) return -1;
    return std::atof(text.c_str() + text.find(':', pos) + 1);
  }

  // Runs `tessera ROLE argv...` to its end; its exit code (-1 if it hung).
  int RunToEnd(const std::vector<std::string>& argv) {
    std::vector<std::string> full = {testing::TesseraBinary()};
    full.insert(full.end(), argv.begin(), argv.end());
    const pid_t pid = testing::Spawn(full, dir_.File("usage.log"));
    std::optional<int> status = testing::WaitForExit(pid, seconds(60));
    return status && WIFEXITED(*status) ? WEXITSTATUS(*status) : -1;
  }

  testing::TempDir dir_;
  std::vector<Node> nodes_;
};

TEST_F(RoleCommandsE2eTest, JobFileNodesTrainAndWriteOutputs) {
  const pid_t scheduler =
      Start("scheduler", "scheduler", {"--address-file", dir_.File("scheduler.addr")});
  ASSERT_TRUE(testing::PollUntil(
      [&] { return fs::exists(dir_.File("scheduler.addr")) || !testing::ProcessAlive(scheduler); },
      seconds(60)));
  std::string addr = testing::ReadFileOrEmpty(dir_.File("scheduler.addr"));
  ASSERT_FALSE(addr.empty()) << Logs();
  addr = addr.substr(0, addr.find_first_of("\r\n"));
  ::setenv("TESSERA_SCHEDULER", addr.c_str(), 1);  // inherited, like a pod's env
  for (int r = 0; r < 2; ++r) {
    Start("server-" + std::to_string(r), "server", {"--rank", std::to_string(r)});
  }
  for (int r = 0; r < 2; ++r) {
    Start("worker-" + std::to_string(r), "worker", {"--rank", std::to_string(r)});
  }
  for (const Node& node : nodes_) {
    std::optional<int> status = testing::WaitForExit(node.pid, seconds(300));
    ASSERT_TRUE(status.has_value()) << node.name << " still running\n" << Logs();
    EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0)
        << node.name << " ended with status " << *status << "\n"
        << Logs();
  }
  const std::string out = dir_.File("out");
  const double auc = JsonNumber(out + "/eval.json", "auc");
  EXPECT_GT(auc, 0.56) << Logs();  // the threshold of train_test.cc, same data and model
  EXPECT_LT(auc, 0.95);
  EXPECT_EQ(JsonNumber(out + "/eval.json", "samples"), 6000);
  EXPECT_EQ(JsonNumber(out + "/train.json", "examples"), 2 * 54000);
  EXPECT_TRUE(fs::exists(out + "/model")) << Logs();
  // cluster.json went to output_dir (no --cluster-file), listing the job's
  // cluster: 2 servers and 2 workers although no --servers/--workers flag.
  StatusOr<std::vector<cli::ClusterNodeRecord>> records =
      cli::ParseClusterJson(testing::ReadFileOrEmpty(out + "/cluster.json"));
  ASSERT_TRUE(records.ok()) << records.status();
  int servers = 0;
  int workers = 0;
  for (const cli::ClusterNodeRecord& r : *records) {
    servers += r.role == Role::kServer ? 1 : 0;
    workers += r.role == Role::kWorker ? 1 : 0;
  }
  EXPECT_EQ(servers, 2);
  EXPECT_EQ(workers, 2);
  EXPECT_THAT(testing::ReadFileOrEmpty(dir_.File("scheduler.log")),
              HasSubstr("2 server(s) and 2 worker(s); heartbeat 200 ms, timeout 3000 ms"));
}

TEST_F(RoleCommandsE2eTest, JobFlagsRejectContradictionsAsUsageErrors) {
  ::setenv("TESSERA_SCHEDULER", "tcp://127.0.0.1:1", 1);
  // --set without --job; --job with --program; --job with --tables-for.
  EXPECT_EQ(RunToEnd({"server", "--set", "train.epochs=1"}), 2);
  EXPECT_EQ(RunToEnd({"worker", "--job", dir_.File("job.yaml"), "--program", "smoke"}), 2);
  EXPECT_EQ(RunToEnd({"scheduler", "--job", dir_.File("job.yaml"), "--tables-for", "smoke"}), 2);
  // A job file that does not parse fails before anything starts.
  std::ofstream(dir_.File("bad.yaml")) << "cluster: {servers: many}\n";
  EXPECT_EQ(RunToEnd({"scheduler", "--job", dir_.File("bad.yaml")}), 2);
  EXPECT_EQ(RunToEnd({"worker", "--job", dir_.File("bad.yaml")}), 2);
}

}  // namespace
}  // namespace tessera
