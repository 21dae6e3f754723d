// `tessera status` against a real local job: a streaming job (2 servers, 2
// workers) trains a file and publishes; `tessera status --run DIR --json`
// lists every node alive with its pid and address, each server's rows and
// bytes, the workers' examples adding up to the file's lines and a fresh
// model version; `--scheduler HOST:PORT` prints the same as tables. Once
// the job is stopped, status fails with a clear message and exit code 1.
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/e2e/process_util.h"
#include "tests/testing/temp_dir.h"

namespace tessera {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

struct RunResult {
  int exit_code = -1;
  std::string output;
};

class StatusE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(testing::TesseraBinary().empty()) << "TESSERA_BIN unset";
    ::setenv("TESSERA_CLUSTER_TOKEN", "status-e2e-token", 1);
    const pid_t gen = testing::Spawn({testing::TesseraBinary(), "gen", "--out", dir_.File("data"),
                                      "--rows", "3000", "--users", "60", "--items", "100",
                                      "--seed", "5"},
                                     dir_.File("gen.log"));
    std::optional<int> status = testing::WaitForExit(gen, std::chrono::seconds(60));
    ASSERT_TRUE(status && WIFEXITED(*status) && WEXITSTATUS(*status) == 0);
  }
  void TearDown() override { ::unsetenv("TESSERA_CLUSTER_TOKEN"); }

  RunResult Status(std::vector<std::string> args) {
    args.insert(args.begin(), {testing::TesseraBinary(), "status"});
    const std::string log = dir_.File("status-" + std::to_string(runs_++) + ".log");
    const pid_t pid = testing::Spawn(args, log);
    std::optional<int> status = testing::WaitForExit(pid, std::chrono::seconds(30));
    RunResult r;
    r.output = testing::ReadFileOrEmpty(log);
    if (status && WIFEXITED(*status)) r.exit_code = WEXITSTATUS(*status);
    return r;
  }

  testing::TempDir dir_;
  int runs_ = 0;
};

uint64_t CountLines(const std::string& path) {
  std::ifstream in(path);
  uint64_t n = 0;
  for (std::string line; std::getline(in, line);) n += !line.empty();
  return n;
}

TEST_F(StatusE2eTest, ShowsEveryNodeOfARunningJobAndFailsOnceItStopped) {
  const std::string incoming = dir_.File("incoming");
  fs::create_directories(incoming);
  {
    std::ofstream job(dir_.File("job.yaml"));
    job << "data: {schema: data/schema.yaml, train: incoming, follow: true}\n"
           "model: {type: fm, embedding_dim: 4}\n"
           "train: {batch_size: 128, max_batch_delay_ms: 50}\n"
           "cluster: {servers: 2, workers: 2, heartbeat_interval_ms: 200}\n"
           "publish: {model_dir: pub, interval_s: 0.5, full_every: 1000, keep: 100}\n"
           "output_dir: out\n";
  }
  const uint64_t lines = CountLines(dir_.File("data/train.tsv"));
  ASSERT_GT(lines, 1000u);
  fs::copy_file(dir_.File("data/train.tsv"), incoming + "/.part-000.tsv");
  fs::rename(incoming + "/.part-000.tsv", incoming + "/part-000.tsv");
  const pid_t train = testing::Spawn({testing::TesseraBinary(), "train", dir_.File("job.yaml")},
                                     dir_.File("train.log"));
  auto log = [&] { return testing::ReadFileOrEmpty(dir_.File("train.log")); };
  ASSERT_TRUE(testing::PollUntil([&] { return fs::exists(dir_.File("out/cluster.json")); },
                                 std::chrono::seconds(60)))
      << log();

  // Every line trained, reported in the workers' heartbeats, and a version
  // published.
  nlohmann::json doc;
  uint64_t examples = 0;
  const bool trained = testing::PollUntil(
      [&] {
        RunResult r = Status({"--run", dir_.File("out"), "--json"});
        if (r.exit_code != 0) return false;
        doc = nlohmann::json::parse(r.output, nullptr, false);
        if (!doc.is_object() || !doc["workers"].is_array()) return false;
        examples = 0;
        for (const auto& w : doc["workers"]) {
          if (w["examples"].is_number()) examples += w["examples"].get<uint64_t>();
        }
        return examples == lines && doc["model"]["version"].get<uint64_t>() > 0;
      },
      std::chrono::seconds(90));
  ASSERT_TRUE(trained) << "examples " << examples << " of " << lines << "\n"
                       << doc.dump(1) << "\n"
                       << log();

  EXPECT_EQ(doc["running"], true);
  EXPECT_EQ(doc["num_slots"].get<int>() > 0, true);
  ASSERT_EQ(doc["nodes"].size(), 5u) << doc.dump(1);
  std::vector<std::string> roles;
  for (const auto& n : doc["nodes"]) {
    roles.push_back(n["role"].get<std::string>() + "/" + std::to_string(n["id"].get<int>()));
    EXPECT_EQ(n["health"], "alive") << n.dump();
    const pid_t pid = static_cast<pid_t>(n["pid"].get<int64_t>());
    EXPECT_TRUE(pid > 0 && testing::ProcessAlive(pid)) << n.dump();
    EXPECT_THAT(n["address"].get<std::string>(), HasSubstr("tcp://127.0.0.1:")) << n.dump();
    EXPECT_GT(n["metrics_port"].get<int>(), 0) << n.dump();
    if (n["role"] != "scheduler") {
      // Heartbeats every 200 ms (a loaded machine may delay a few).
      EXPECT_LT(n["heartbeat_age_s"].get<double>(), 5.0) << n.dump();
    }
  }
  EXPECT_EQ(roles, (std::vector<std::string>{"scheduler/0", "server/0", "server/1", "worker/0",
                                             "worker/1"}));
  ASSERT_EQ(doc["shards"].size(), 2u);
  int slots = 0;
  for (const auto& s : doc["shards"]) {
    ASSERT_EQ(s["reported"], true) << s.dump();
    slots += s["slots"].get<int>();
    // Both servers hold rows (ids hash across the slots), each at least its
    // row value (4 floats) worth of bytes.
    EXPECT_GT(s["rows"].get<uint64_t>(), 50u) << s.dump();
    EXPECT_GT(s["bytes"].get<uint64_t>(), s["rows"].get<uint64_t>() * 16) << s.dump();
    EXPECT_GE(s["keys_per_s"].get<double>(), 0) << s.dump();
  }
  EXPECT_EQ(slots, doc["num_slots"].get<int>());
  ASSERT_EQ(doc["workers"].size(), 2u);
  uint64_t steps = 0;
  for (const auto& w : doc["workers"]) {
    EXPECT_EQ(w["reported"], true) << w.dump();
    // One file is one chunk: one worker may have trained it all.
    steps += w["steps"].get<uint64_t>();
    EXPECT_GE(w["samples_per_s"].get<double>(), 0) << w.dump();
    EXPECT_LE(w["staleness"].get<uint64_t>(), 10u) << w.dump();
  }
  // batch_size 128 per worker.
  EXPECT_GE(steps, lines / 128);
  const double freshness = doc["model"]["freshness_s"].get<double>();
  EXPECT_GE(freshness, 0);
  EXPECT_LT(freshness, 30);

  // The same scheduler by HOST:PORT, as tables.
  const int port = doc["nodes"][0]["metrics_port"].get<int>();
  RunResult table = Status({"--scheduler", "127.0.0.1:" + std::to_string(port)});
  EXPECT_EQ(table.exit_code, 0) << table.output;
  EXPECT_THAT(table.output, HasSubstr("cluster: running"));
  EXPECT_THAT(table.output, HasSubstr("NODES"));
  EXPECT_THAT(table.output, HasSubstr("SHARDS"));
  EXPECT_THAT(table.output, HasSubstr("WORKERS"));
  EXPECT_THAT(table.output, HasSubstr("model: version "));

  // --watch refreshes until interrupted: two documents, then SIGTERM ends it
  // with exit code 0.
  const std::string watch_log = dir_.File("watch.log");
  const pid_t watch = testing::Spawn(
      {testing::TesseraBinary(), "status", "--run", dir_.File("out"), "--json", "--watch", "0.2"},
      watch_log);
  auto documents = [&] {
    const std::string text = testing::ReadFileOrEmpty(watch_log);
    size_t n = 0;
    for (size_t at = 0; (at = text.find("\"nodes\"", at)) != std::string::npos; ++at) ++n;
    return n;
  };
  EXPECT_TRUE(testing::PollUntil([&] { return documents() >= 2; }, std::chrono::seconds(20)))
      << testing::ReadFileOrEmpty(watch_log);
  ASSERT_EQ(::kill(watch, SIGTERM), 0);
  std::optional<int> watched = testing::WaitForExit(watch, std::chrono::seconds(10));
  ASSERT_TRUE(watched.has_value()) << "--watch ignored SIGTERM";
  EXPECT_TRUE(WIFEXITED(*watched) && WEXITSTATUS(*watched) == 0) << *watched;

  // Stop the job (SIGTERM drains and exits 0); then nothing answers.
  ASSERT_EQ(::kill(train, SIGTERM), 0);
  std::optional<int> exited = testing::WaitForExit(train, std::chrono::seconds(60));
  ASSERT_TRUE(exited.has_value()) << log();
  RunResult stopped = Status({"--run", dir_.File("out"), "--timeout-s", "2"});
  EXPECT_EQ(stopped.exit_code, 1) << stopped.output;
  EXPECT_THAT(stopped.output, HasSubstr("no scheduler answers at http://127.0.0.1:"));
}

}  // namespace
}  // namespace tessera
