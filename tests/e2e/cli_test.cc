// The command-line surface of `tessera`, run as a real process.
#include <stdlib.h>
#include <sys/wait.h>

#include <chrono>
#include <fstream>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/e2e/process_util.h"
#include "tests/testing/temp_dir.h"

namespace tessera {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

struct RunResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr
};

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(testing::TesseraBinary().empty()) << "TESSERA_BIN unset";
    ::unsetenv("TESSERA_CLUSTER_TOKEN");
    ::unsetenv("TESSERA_SCHEDULER");
  }

  RunResult Run(std::vector<std::string> args) {
    args.insert(args.begin(), testing::TesseraBinary());
    const std::string output = dir_.File("out" + std::to_string(runs_++) + ".txt");
    pid_t pid = testing::Spawn(args, output);
    std::optional<int> status = testing::WaitForExit(pid, std::chrono::seconds(30));
    EXPECT_TRUE(status.has_value()) << "tessera did not exit";
    RunResult result;
    if (status && WIFEXITED(*status)) result.exit_code = WEXITSTATUS(*status);
    result.output = testing::ReadFileOrEmpty(output);
    return result;
  }

  testing::TempDir dir_;
  int runs_ = 0;
};

TEST_F(CliTest, HelpListsEverySubcommand) {
  RunResult r = Run({"--help"});
  EXPECT_EQ(r.exit_code, 0);
  for (const char* sub : {"scheduler", "server", "worker", "local", "bench", "train", "eval", "gen",
                          "serve", "status", "keygen"}) {
    EXPECT_THAT(r.output, HasSubstr(std::string("\n  ") + sub + " ")) << sub;
  }
}

TEST_F(CliTest, EverySubcommandHasHelp) {
  const std::vector<std::vector<std::string>> subcommands = {
      {"scheduler"},       {"server"},         {"worker"},
      {"local"},           {"bench"},          {"bench", "kv"},
      {"bench", "table"},  {"bench", "capacity"}, {"bench", "transport"},
      {"train"},           {"gen"},            {"status"},
      {"serve"},           {"keygen"}};
  for (std::vector<std::string> sub : subcommands) {
    std::string name = sub.back();
    sub.push_back("--help");
    RunResult r = Run(sub);
    EXPECT_EQ(r.exit_code, 0) << name;
    EXPECT_THAT(r.output, HasSubstr("Usage:")) << name;
  }
}

TEST_F(CliTest, WithoutSubcommandFails) {
  RunResult r = Run({});
  EXPECT_NE(r.exit_code, 0);
}

TEST_F(CliTest, EveryLongRunningCommandTakesALogLevel) {
  for (const char* sub : {"train", "local", "serve", "join", "scheduler", "server", "worker"}) {
    RunResult r = Run({sub, "--help"});
    EXPECT_EQ(r.exit_code, 0) << sub;
    EXPECT_THAT(r.output, HasSubstr("--log-level")) << sub;
  }
  // A bad level is refused before anything starts.
  RunResult bad = Run({"serve", "--model-dir", dir_.File("none"), "--log-level", "loud"});
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_THAT(bad.output, HasSubstr("--log-level"));
}

TEST_F(CliTest, StatusWithoutARunningSchedulerFailsClearly) {
  // Port 1 on loopback: nothing listens (connection refused at once).
  RunResult down = Run({"status", "--scheduler", "127.0.0.1:1", "--timeout-s", "2"});
  EXPECT_EQ(down.exit_code, 1);
  EXPECT_THAT(down.output, HasSubstr("no scheduler answers at http://127.0.0.1:1/v1/status"));
  RunResult no_run = Run({"status", "--run", dir_.File("no-such-run")});
  EXPECT_EQ(no_run.exit_code, 2);
  EXPECT_THAT(no_run.output, HasSubstr("cluster.json does not exist"));
  RunResult neither = Run({"status"});
  EXPECT_EQ(neither.exit_code, 2);
  EXPECT_THAT(neither.output, HasSubstr("give --scheduler HOST:PORT, --run DIR or --serve HOST:PORT"));
  RunResult bad = Run({"status", "--scheduler", "localhost"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_THAT(bad.output, HasSubstr("expected HOST:PORT"));
}

TEST_F(CliTest, NodesRefuseToStartWithoutAToken) {
  RunResult scheduler = Run({"scheduler", "--servers=1", "--workers=1"});
  EXPECT_EQ(scheduler.exit_code, 2);
  EXPECT_THAT(scheduler.output, HasSubstr("TESSERA_CLUSTER_TOKEN"));
  RunResult server = Run({"server", "--scheduler=tcp://127.0.0.1:1"});
  EXPECT_EQ(server.exit_code, 2);
  EXPECT_THAT(server.output, HasSubstr("TESSERA_CLUSTER_TOKEN"));
}

TEST_F(CliTest, TokenIsNotACommandLineFlag) {
  RunResult r = Run({"server", "--scheduler=tcp://127.0.0.1:1", "--token=secret"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.output, HasSubstr("--token"));
}

TEST_F(CliTest, BadTableSpecIsAUsageError) {
  const std::string token_file = dir_.File("token");
  { std::ofstream(token_file) << "0123456789abcdef\n"; }
  RunResult r = Run({"scheduler", "--token-file=" + token_file, "--table=emb:sparse:0:sgd"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.output, AllOf(HasSubstr("emb:sparse:0:sgd"), HasSubstr("size/dim")));
}

TEST_F(CliTest, WorkerNeedsAKnownProgram) {
  RunResult r = Run({"worker", "--scheduler=tcp://127.0.0.1:1", "--program=nope"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.output, HasSubstr("nope"));
}

}  // namespace
}  // namespace tessera
