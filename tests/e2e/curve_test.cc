// CurveZMQ as a user runs it: `tessera keygen`, then a local cluster with
// --curve-dir, and a server whose key is not the cluster's refused by a
// scheduler started node by node (real processes, tcp://127.0.0.1).
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <regex>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/e2e/process_util.h"
#include "tests/testing/temp_dir.h"

namespace tessera {
namespace {

using std::chrono::seconds;
using ::testing::HasSubstr;

class CurveE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(testing::TesseraBinary().empty()) << "TESSERA_BIN unset";
    ::setenv("TESSERA_CLUSTER_TOKEN", "curve-e2e-token", 1);
    ::unsetenv("TESSERA_CURVE_DIR");
    ::unsetenv("TESSERA_SCHEDULER");
  }

  // Runs `tessera args...` to completion; its exit code, -1 on a timeout.
  int Run(const std::vector<std::string>& args, const std::string& log) {
    std::vector<std::string> argv = {testing::TesseraBinary()};
    argv.insert(argv.end(), args.begin(), args.end());
    const pid_t pid = testing::Spawn(argv, dir_.File(log));
    std::optional<int> status = testing::WaitForExit(pid, seconds(60));
    if (!status.has_value()) {
      ::kill(pid, SIGKILL);
      testing::WaitForExit(pid, seconds(5));
      return -1;
    }
    return WIFEXITED(*status) ? WEXITSTATUS(*status) : -1;
  }

  std::string Log(const std::string& name) const {
    return testing::ReadFileOrEmpty(dir_.File(name));
  }

  std::string Keygen(const std::string& name) {
    const std::string dir = dir_.File(name);
    EXPECT_EQ(Run({"keygen", "--out", dir}, name + ".log"), 0) << Log(name + ".log");
    return dir;
  }

  testing::TempDir dir_;
};

TEST_F(CurveE2eTest, KeygenWritesPrivateSecretsAndRefusesToOverwrite) {
  const std::string keys = Keygen("keys");
  struct stat st;
  for (const char* secret : {"curve.key", "token"}) {
    ASSERT_EQ(::stat((keys + "/" + secret).c_str(), &st), 0) << secret;
    EXPECT_EQ(st.st_mode & 0777, 0600u) << secret;
  }
  ASSERT_EQ(::stat((keys + "/curve.pub").c_str(), &st), 0);
  EXPECT_THAT(Log("keys.log"), HasSubstr("--curve-dir " + keys));
  EXPECT_EQ(Run({"keygen", "--out", keys}, "again.log"), 2);
  EXPECT_THAT(Log("again.log"), HasSubstr("exists (--force to replace)"));
  EXPECT_EQ(Run({"keygen", "--out", keys, "--force"}, "force.log"), 0) << Log("force.log");
}

TEST_F(CurveE2eTest, LocalClusterRunsWithCurve) {
  const std::string keys = Keygen("keys");
  ASSERT_EQ(Run({"local", "--servers=2", "--workers=2", "--program=smoke", "--curve-dir", keys,
                 "--output-dir=" + dir_.File("run"), "--startup-timeout-s=60"},
                "local.log"),
            0)
      << Log("local.log");
  const std::string log = Log("local.log");
  // The scheduler, both servers and both workers turned Curve on.
  size_t nodes = 0;
  for (size_t p = 0; (p = log.find("CurveZMQ on", p)) != std::string::npos; ++p) ++nodes;
  EXPECT_EQ(nodes, 5u) << log;
  EXPECT_THAT(log, HasSubstr("cluster finished: every node exited 0"));
}

TEST_F(CurveE2eTest, ServerWithAnotherKeyCannotJoinButOneWithTheKeyCan) {
  const std::string keys = Keygen("keys");
  const std::string other = Keygen("other");
  const std::string address_file = dir_.File("scheduler.addr");
  const pid_t scheduler = testing::Spawn(
      {testing::TesseraBinary(), "scheduler", "--servers=1", "--workers=1",
       "--bind=tcp://127.0.0.1:0", "--metrics-host=127.0.0.1", "--curve-dir", keys,
       "--address-file", address_file},
      dir_.File("scheduler.log"));
  ASSERT_TRUE(testing::PollUntil(
      [&] { return !testing::ReadFileOrEmpty(address_file).empty(); }, seconds(30)))
      << Log("scheduler.log");
  std::string address = testing::ReadFileOrEmpty(address_file);
  address.erase(address.find_last_not_of("\n") + 1);
  const std::vector<std::string> server = {"server", "--scheduler", address,
                                           "--bind=tcp://127.0.0.1:0",
                                           "--metrics-host=127.0.0.1", "--startup-timeout-s=2"};

  std::vector<std::string> intruder = server;
  intruder.insert(intruder.end(), {"--curve-dir", other});
  EXPECT_EQ(Run(intruder, "intruder.log"), 1);
  EXPECT_THAT(Log("intruder.log"), HasSubstr("DEADLINE_EXCEEDED"));
  EXPECT_EQ(Run(server, "plaintext.log"), 1);  // no key at all

  // The scheduler counted the refusals on its /metrics.
  std::smatch port;
  const std::string scheduler_log = Log("scheduler.log");
  ASSERT_TRUE(std::regex_search(scheduler_log, port, std::regex("metrics on port (\\d+)")))
      << scheduler_log;
  std::optional<testing::HttpResult> metrics = testing::HttpGet(std::stoi(port[1]), "/metrics");
  ASSERT_TRUE(metrics.has_value());
  std::smatch refused;
  ASSERT_TRUE(std::regex_search(metrics->body, refused,
                                std::regex("tessera_transport_auth_refused_total ([0-9.e+]+)")))
      << metrics->body;
  EXPECT_GE(std::stod(refused[1]), 2);

  // With the cluster key a server registers (it then waits for a worker:
  // stop it and the scheduler once it has).
  std::vector<std::string> member = server;
  member.insert(member.end(), {"--curve-dir", keys});
  std::vector<std::string> argv = {testing::TesseraBinary()};
  argv.insert(argv.end(), member.begin(), member.end());
  const pid_t good = testing::Spawn(argv, dir_.File("member.log"));
  EXPECT_TRUE(testing::PollUntil(
      [&] { return Log("member.log").find("registered as server/0") != std::string::npos; },
      seconds(30)))
      << Log("member.log");
  for (pid_t pid : {good, scheduler}) {
    ::kill(pid, SIGKILL);
    testing::WaitForExit(pid, seconds(10));
  }
}

}  // namespace
}  // namespace tessera
