// The closing-the-loop issue end to end, with real processes: `tessera
// serve` logs impressions to --impression-dir, a shopper recommends and
// clicks (POST /v1/feedback), `tessera join` (restarted for every pass:
// --once) turns the log into schema-TSV files in the job's followed
// training directory, which the trainer's parser and `tessera eval` read;
// and `tessera simulate`'s shoppers against a model of gen's world.
#include <signal.h>
#include <sys/wait.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "models/schema.h"
#include "models/tsv_parser.h"
#include "tests/e2e/process_util.h"
#include "tests/models/saved_model_test_util.h"
#include "tests/serving/serving_test_util.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"
// After Eigen (via models/): httplib's macros break Eigen's headers.
#include <httplib.h>

namespace tessera {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::vector<std::string> JoinedRows(const std::string& dir) {
  std::vector<std::string> names;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name[0] != '.') names.push_back(it->path().string());
  }
  std::sort(names.begin(), names.end());
  std::vector<std::string> rows;
  for (const std::string& name : names) {
    std::ifstream in(name);
    for (std::string line; std::getline(in, line);) rows.push_back(line);
  }
  return rows;
}

// Runs `tessera args...` to completion (60 s at most); its exit code, or
// -1. Output goes to `log`.
int RunTessera(const std::vector<std::string>& args, const std::string& log) {
  std::vector<std::string> argv = {testing::TesseraBinary()};
  argv.insert(argv.end(), args.begin(), args.end());
  return testing::RunToExit(argv, log, std::chrono::seconds(60));
}

TEST(FeedbackLoopE2eTest, ServeLogsJoinLabelsAndTrainingReadsTheRows) {
  testing::TempDir dir;
  ASSERT_OK(serving::testing::WriteTestModel(dir.File("model"), "deepfm"));
  std::ofstream(dir.File("schema.yaml")) << models::testing::kTestSchema;
  // One job file for both: the joiner writes into the directory training follows.
  std::ofstream(dir.File("job.yaml"))
      << "data: {schema: schema.yaml, train: joined, follow: true}\n"
         "join: {impression_dir: events, window_s: 1, grace_s: 0, commit_interval_ms: 50}\n";

  int port = 0;
  const pid_t serve = testing::StartServe(
      testing::TesseraBinary(),
      {"--model-dir", dir.File("model"), "--name", "ctr", "--impression-dir", dir.File("events"),
       "--impression-fsync-ms", "0"},
      dir.File("serve.log"), &port);
  ASSERT_GT(serve, 0) << testing::ReadFileOrEmpty(dir.File("serve.log"));

  httplib::Client client("127.0.0.1", port);
  auto post = [&](const std::string& path, const json& body) -> std::pair<int, json> {
    auto r = client.Post(path.c_str(), body.dump(), "application/json");
    if (!r) return {-1, json()};
    return {r->status, json::parse(r->body, nullptr, false)};
  };
  const auto [status, reply] = post(
      "/v1/models/ctr:recommend",
      json{{"context", {{"user_id", "u1"}, {"hist", {"i1", "i2"}}}},
           {"candidates", {json{{"item_id", "i3"}, {"price", 2.5}}, "i4", "i5"}},
           {"k", 3}});
  ASSERT_EQ(status, 200) << reply.dump();
  const std::string request_id = reply.value("request_id", "");
  ASSERT_FALSE(request_id.empty());
  ASSERT_EQ(reply["items"].size(), 3u);
  const std::string clicked = reply["items"][1]["item_id"];
  const json click{{"request_id", request_id}, {"item_id", clicked}, {"event", "click"}};
  EXPECT_EQ(post("/v1/feedback", click).first, 200);
  EXPECT_EQ(post("/v1/feedback", click).first, 409);  // duplicate
  EXPECT_EQ(post("/v1/feedback", json{{"request_id", "nope"}, {"item_id", "i3"}, {"event", "click"}})
                .first,
            404);
  auto ab = testing::HttpGet(port, "/v1/ab");
  ASSERT_TRUE(ab && ab->status == 200);
  const json results = json::parse(ab->body);
  EXPECT_EQ(results["arms"][0]["impressions"], 3);
  EXPECT_EQ(results["arms"][0]["clicks"], 1);
  // The same results in `tessera status --serve` (a line per arm, and JSON).
  const std::string serve_address = "127.0.0.1:" + std::to_string(port);
  ASSERT_EQ(RunTessera({"status", "--serve", serve_address}, dir.File("status.txt")), 0)
      << testing::ReadFileOrEmpty(dir.File("status.txt"));
  EXPECT_NE(testing::ReadFileOrEmpty(dir.File("status.txt")).find("A/B (serve " + serve_address),
            std::string::npos);
  ASSERT_EQ(RunTessera({"status", "--serve", serve_address, "--json"}, dir.File("status.json")), 0);
  const json shown = json::parse(testing::ReadFileOrEmpty(dir.File("status.json")));
  EXPECT_EQ(shown["ab"][0]["results"]["arms"][0]["clicks"], 1);

  // A joiner that keeps another arm's traffic (join.arms) joins nothing
  // here and counts the 3 impressions and the click as other_arm.
  ASSERT_EQ(RunTessera({"join", dir.File("job.yaml"), "--once", "--out", dir.File("other"), "--set",
                        "join.arms=[treatment]"},
                       dir.File("join-other.log")),
            0)
      << testing::ReadFileOrEmpty(dir.File("join-other.log"));
  EXPECT_TRUE(JoinedRows(dir.File("other")).empty());
  EXPECT_NE(testing::ReadFileOrEmpty(dir.File("join-other.log")).find("other_arm 4"), std::string::npos)
      << testing::ReadFileOrEmpty(dir.File("join-other.log"));

  // The joiner, run to the end of the log again and again (each run a
  // restart from its checkpoint) until the window has closed on all three.
  std::string join_log;
  ASSERT_TRUE(testing::PollUntil(
      [&] {
        const pid_t join = testing::Spawn(
            {testing::TesseraBinary(), "join", dir.File("job.yaml"), "--once"}, dir.File("join.log"));
        const std::optional<int> exit = testing::WaitForExit(join, std::chrono::seconds(30));
        if (!exit || !WIFEXITED(*exit) || WEXITSTATUS(*exit) != 0) return true;  // fails below
        return JoinedRows(dir.File("joined")).size() >= 3;
      },
      std::chrono::seconds(30)));
  join_log = testing::ReadFileOrEmpty(dir.File("join.log"));
  const std::vector<std::string> rows = JoinedRows(dir.File("joined"));
  ASSERT_EQ(rows.size(), 3u) << join_log;  // no loss, no repetition across the restarts
  EXPECT_NE(join_log.find("positives 1 negatives 2"), std::string::npos) << join_log;

  ASSERT_OK_AND_ASSIGN(models::Schema schema, models::Schema::Load(dir.File("schema.yaml")));
  models::TsvParser parser(&schema);
  int positives = 0;
  for (const std::string& row : rows) {
    models::Example example;
    std::string reason;
    EXPECT_EQ(parser.Parse(row, &example, &reason), models::LineKind::kOk) << row << ": " << reason;
    EXPECT_EQ(row.rfind("1\tu1\t" + clicked + "\t", 0) == 0, row[0] == '1') << row;
    EXPECT_NE(row.find("\ti1,i2"), std::string::npos) << row;
    positives += row[0] == '1';
  }
  EXPECT_EQ(positives, 1);

  // `tessera eval` reads the joined file as data.
  std::vector<std::string> files;
  for (const auto& e : fs::directory_iterator(dir.File("joined"))) {
    if (e.path().filename().string()[0] != '.') files.push_back(e.path().string());
  }
  std::sort(files.begin(), files.end());
  const pid_t eval = testing::Spawn({testing::TesseraBinary(), "eval", "--model", dir.File("model"),
                                     "--data", files.back()},
                                    dir.File("eval.log"));
  const std::optional<int> eval_exit = testing::WaitForExit(eval, std::chrono::seconds(60));
  ASSERT_TRUE(eval_exit && WIFEXITED(*eval_exit)) << testing::ReadFileOrEmpty(dir.File("eval.log"));
  EXPECT_EQ(WEXITSTATUS(*eval_exit), 0) << testing::ReadFileOrEmpty(dir.File("eval.log"));

  EXPECT_EQ(testing::StopProcess(serve, std::chrono::seconds(30)), 0);
}

// The loop on `tessera gen`'s world: a model trained on gen's data is
// served, `tessera simulate` sends shoppers of the same world (recommend,
// click per the planted model, feedback), and `tessera join` labels every
// impression it printed.
TEST(FeedbackLoopE2eTest, SimulatedShoppersClickAndTheJoinerLabelsTheirImpressions) {
  testing::TempDir dir;
  const std::string world_flags[] = {"--users", "200", "--items", "400", "--seed", "7"};
  std::vector<std::string> gen = {"gen", "--out", dir.File("data"), "--rows", "4000"};
  gen.insert(gen.end(), std::begin(world_flags), std::end(world_flags));
  ASSERT_EQ(RunTessera(gen, dir.File("gen.log")), 0) << testing::ReadFileOrEmpty(dir.File("gen.log"));
  std::ofstream(dir.File("job.yaml"))
      << "data: {schema: data/schema.yaml, train: data/train.tsv}\n"
         "model: {type: lr}\n"
         "cluster: {servers: 1, workers: 1}\n"
         "output_dir: run\n";
  ASSERT_EQ(RunTessera({"train", dir.File("job.yaml")}, dir.File("train.log")), 0)
      << testing::ReadFileOrEmpty(dir.File("train.log"));
  int port = 0;
  const pid_t serve = testing::StartServe(
      testing::TesseraBinary(),
      {"--model-dir", dir.File("run/model"), "--name", "ctr", "--impression-dir", dir.File("events")},
      dir.File("serve.log"), &port);
  ASSERT_GT(serve, 0) << testing::ReadFileOrEmpty(dir.File("serve.log"));
  std::vector<std::string> simulate = {"simulate", "--serve", "http://127.0.0.1:" + std::to_string(port),
                                       "--name", "ctr", "--requests", "60", "--k", "4",
                                       "--report-every", "20"};
  simulate.insert(simulate.end(), std::begin(world_flags), std::end(world_flags));
  ASSERT_EQ(RunTessera(simulate, dir.File("simulate.log")), 0)
      << testing::ReadFileOrEmpty(dir.File("simulate.log"));
  const std::string report = testing::ReadFileOrEmpty(dir.File("simulate.log"));
  EXPECT_NE(report.find("simulate: requests 41-60"), std::string::npos) << report;
  EXPECT_NE(report.find("default: 240 shown"), std::string::npos) << report;  // 60 x k
  EXPECT_NE(report.find("errors 0"), std::string::npos) << report;
  auto ab = testing::HttpGet(port, "/v1/ab");
  ASSERT_TRUE(ab && ab->status == 200);
  const json results = json::parse(ab->body);
  EXPECT_EQ(results["arms"][0]["impressions"], 240);
  const int clicks = results["arms"][0]["clicks"];
  EXPECT_GT(clicks, 0);  // gen's CTR is ~0.17
  // The simulator's clicks are what serving counted.
  EXPECT_NE(report.find(absl::StrCat(" ", clicks, " clicks")), std::string::npos) << report;

  std::ofstream(dir.File("loop.yaml"))
      << "data: {schema: data/schema.yaml, train: joined, follow: true}\n"
         "join: {impression_dir: events, window_s: 0.2, grace_s: 0}\n";
  ASSERT_TRUE(testing::PollUntil(
      [&] {
        if (RunTessera({"join", dir.File("loop.yaml"), "--once"}, dir.File("join.log")) != 0) return true;
        return JoinedRows(dir.File("joined")).size() >= 240;
      },
      std::chrono::seconds(30)));
  const std::vector<std::string> rows = JoinedRows(dir.File("joined"));
  ASSERT_EQ(rows.size(), 240u) << testing::ReadFileOrEmpty(dir.File("join.log"));
  EXPECT_EQ(std::count_if(rows.begin(), rows.end(), [](const std::string& r) { return r[0] == '1'; }),
            clicks);
  EXPECT_EQ(testing::StopProcess(serve, std::chrono::seconds(30)), 0);
}

}  // namespace
}  // namespace tessera
