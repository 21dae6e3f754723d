// Launch through mpirun: the ranks become the nodes (rank 0 the scheduler,
// then servers, then workers) and rank 0 broadcasts its address and the
// token. Real processes over tcp://127.0.0.1.
#include <stdlib.h>
#include <sys/wait.h>

#include <chrono>
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

class MpirunTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(testing::TesseraBinary().empty()) << "TESSERA_BIN unset";
    const char* mpirun = std::getenv("TESSERA_MPIRUN");
    ASSERT_TRUE(mpirun != nullptr && mpirun[0] != '\0') << "TESSERA_MPIRUN unset";
    mpirun_ = mpirun;
    // Containers often forbid the cross-memory-attach single copy; ranks
    // only exchange a few bytes, so plain copies are fine.
    ::setenv("OMPI_MCA_btl_vader_single_copy_mechanism", "none", 1);
    ::unsetenv("TESSERA_CLUSTER_TOKEN");
  }

  // mpirun -np `np` tessera `args`...; returns the exit code (-1: killed or
  // timed out).
  int RunMpi(int np, const std::vector<std::string>& args) {
    std::vector<std::string> argv = {mpirun_, "--allow-run-as-root", "--oversubscribe",
                                     "-np",   std::to_string(np),    testing::TesseraBinary()};
    argv.insert(argv.end(), args.begin(), args.end());
    pid_t pid = testing::Spawn(argv, dir_.File("mpirun.log"));
    std::optional<int> status = testing::WaitForExit(pid, seconds(120));
    output_ = testing::ReadFileOrEmpty(dir_.File("mpirun.log"));
    if (!status) {
      ::kill(pid, SIGKILL);
      (void)testing::WaitForExit(pid, seconds(10));
      return -1;
    }
    return WIFEXITED(*status) ? WEXITSTATUS(*status) : -1;
  }

  bool HasKvBench() {
    std::vector<std::string> argv = {testing::TesseraBinary(), "worker", "--help"};
    pid_t pid = testing::Spawn(argv, dir_.File("help.txt"));
    (void)testing::WaitForExit(pid, seconds(30));
    return testing::ReadFileOrEmpty(dir_.File("help.txt")).find("kvbench") != std::string::npos;
  }

  std::string mpirun_;
  std::string output_;
  testing::TempDir dir_;
};

TEST_F(MpirunTest, SmokeClusterOverFiveRanks) {
  int code = RunMpi(5, {"local", "--servers=2", "--program=smoke",
                        "--output-dir=" + dir_.path().string(), "--startup-timeout-s=60"});
  ASSERT_EQ(code, 0) << output_;
  StatusOr<std::vector<cli::ClusterNodeRecord>> nodes =
      cli::ParseClusterJson(testing::ReadFileOrEmpty(dir_.File("cluster.json")));
  ASSERT_TRUE(nodes.ok()) << nodes.status();
  ASSERT_EQ(nodes->size(), 5u);
  EXPECT_EQ((*nodes)[0].role, Role::kScheduler);
  EXPECT_EQ((*nodes)[1].role, Role::kServer);
  EXPECT_EQ((*nodes)[2].role, Role::kServer);
  EXPECT_EQ((*nodes)[3].role, Role::kWorker);
  EXPECT_EQ((*nodes)[4].role, Role::kWorker);
}

TEST_F(MpirunTest, TooFewRanksForTheServersIsAnError) {
  int code = RunMpi(2, {"local", "--servers=2", "--program=smoke"});
  EXPECT_NE(code, 0);
  EXPECT_THAT(output_, ::testing::HasSubstr("leaves no worker"));
}

TEST_F(MpirunTest, BenchKvOverFiveRanks) {
  if (!HasKvBench()) GTEST_SKIP() << "this tessera binary has no kvbench program";
  int code = RunMpi(5, {"bench", "kv", "--servers=2", "--keys=100", "--dims=8", "--iters=3"});
  EXPECT_EQ(code, 0) << output_;
}

}  // namespace
}  // namespace tessera
