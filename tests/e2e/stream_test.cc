// Streaming training as real processes: a job following a directory drains
// and exits 0 on SIGTERM after publishing a last version; a job reading
// stdin ends at EOF. Every example is trained exactly once.
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "gtest/gtest.h"
#include "models/model_versions.h"
#include "models/saved_model.h"
#include "tests/e2e/process_util.h"
#include "tests/testing/temp_dir.h"
// After Eigen (via models/): httplib's macros break Eigen's headers.
#include <httplib.h>

namespace tessera {
namespace {

namespace fs = std::filesystem;

class StreamE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(testing::TesseraBinary().empty()) << "TESSERA_BIN unset";
    ::unsetenv("TESSERA_CLUSTER_TOKEN");
    ::unsetenv("TESSERA_SCHEDULER");
    const pid_t gen = testing::Spawn({testing::TesseraBinary(), "gen", "--out", dir_.File("data"),
                                      "--rows", "20000", "--users", "500", "--items", "800",
                                      "--seed", "5"},
                                     dir_.File("gen.log"));
    std::optional<int> status = testing::WaitForExit(gen, std::chrono::seconds(120));
    ASSERT_TRUE(status && WIFEXITED(*status) && WEXITSTATUS(*status) == 0);
    std::ifstream in(dir_.File("data/train.tsv"));
    for (std::string line; std::getline(in, line);) lines_.push_back(line);
    ASSERT_EQ(lines_.size(), 18000u);
  }

  void WriteJob(const std::string& train, bool follow) {
    std::ofstream job(dir_.File("job.yaml"));
    job << "data: {schema: data/schema.yaml, train: '" << train << "'"
        << (follow ? ", follow: true" : "") << "}\n"
        << "model: {type: deepfm, embedding_dim: 8, hidden: [16]}\n"
           "train: {batch_size: 256, max_batch_delay_ms: 50}\n"
           "cluster: {servers: 2, workers: 2}\n"
           "publish: {model_dir: pub, interval_s: 0.5, full_every: 4, keep: 6}\n"
           "output_dir: out\n";
  }

  // Writes lines [begin, end) as `name` the way producers must: a dot file
  // renamed into place once complete.
  void Produce(const std::string& dir, const std::string& name, size_t begin, size_t end) {
    const std::string tmp = dir + "/." + name;
    {
      std::ofstream out(tmp);
      for (size_t i = begin; i < end; ++i) out << lines_[i] << "\n";
    }
    fs::rename(tmp, dir + "/" + name);
  }

  // The examples trained, from out/train.json.
  uint64_t TrainedExamples() {
    nlohmann::json j =
        nlohmann::json::parse(testing::ReadFileOrEmpty(dir_.File("out/train.json")), nullptr, false);
    return j.is_object() && j.contains("examples") ? j["examples"].get<uint64_t>() : 0;
  }

  // The newest complete version's training_state "data" (null if none).
  nlohmann::json LatestDataState() {
    StatusOr<std::vector<uint64_t>> versions = models::ListVersionNumbers(dir_.File("pub"));
    if (!versions.ok() || versions->empty()) return nullptr;
    StatusOr<models::ModelManifest> m =
        models::ReadManifest(models::VersionDir(dir_.File("pub"), versions->back()));
    if (!m.ok()) return nullptr;
    nlohmann::json state = nlohmann::json::parse(m->training_state_json, nullptr, false);
    return state.is_object() && state.contains("data") ? state["data"] : nlohmann::json();
  }

  testing::TempDir dir_;
  std::vector<std::string> lines_;
};

TEST_F(StreamE2eTest, FollowedDirectoryTrainsFilesAsTheyAppearAndDrainsOnSigterm) {
  const std::string incoming = dir_.File("incoming");
  fs::create_directories(incoming);
  WriteJob("incoming", /*follow=*/true);
  Produce(incoming, "part-000.tsv", 0, 6000);
  const pid_t train =
      testing::Spawn({testing::TesseraBinary(), "train", dir_.File("job.yaml")}, dir_.File("train.log"));
  // Files keep arriving while the job runs; each is trained once published
  // versions say so (the watermark passes it).
  for (int part = 1; part <= 2; ++part) {
    const std::string name = "part-00" + std::to_string(part) + ".tsv";
    ASSERT_TRUE(testing::PollUntil(
        [&] {
          nlohmann::json data = LatestDataState();
          return data.is_object() && data.value("watermark", "").find("part-00" +
                                                                     std::to_string(part - 1)) !=
                                         std::string::npos;
        },
        std::chrono::seconds(60)))
        << testing::ReadFileOrEmpty(dir_.File("train.log"));
    Produce(incoming, name, static_cast<size_t>(part) * 6000, static_cast<size_t>(part + 1) * 6000);
  }
  // A dot file is never read, even when the job stops.
  std::ofstream(incoming + "/.part-003.tsv") << lines_[0] << "\n";
  ASSERT_TRUE(testing::PollUntil(
      [&] {
        nlohmann::json data = LatestDataState();
        return data.is_object() && data.value("watermark", "").find("part-002") != std::string::npos;
      },
      std::chrono::seconds(60)))
      << testing::ReadFileOrEmpty(dir_.File("train.log"));
  ASSERT_EQ(::kill(train, SIGTERM), 0);
  std::optional<int> status = testing::WaitForExit(train, std::chrono::seconds(60));
  const std::string log = testing::ReadFileOrEmpty(dir_.File("train.log"));
  ASSERT_TRUE(status.has_value()) << log;
  ASSERT_TRUE(WIFEXITED(*status)) << log;
  EXPECT_EQ(WEXITSTATUS(*status), 0) << log;
  EXPECT_EQ(TrainedExamples(), 18000u) << log;
  // The last version holds everything: nothing left to train.
  nlohmann::json data = LatestDataState();
  ASSERT_TRUE(data.is_object()) << log;
  EXPECT_TRUE(data["chunks"].empty()) << data.dump();
  // keep: 6 bounds what stays on disk: the newest 6 plus, at most, the
  // full snapshot and deltas the oldest kept delta builds on (full_every: 4).
  StatusOr<std::vector<models::VersionInfo>> versions = models::ListVersions(dir_.File("pub"));
  ASSERT_TRUE(versions.ok()) << versions.status();
  ASSERT_FALSE(versions->empty());
  EXPECT_LE(versions->size(), 9u);
  EXPECT_GE(versions->size(), std::min<size_t>(versions->back().version, 6));
  EXPECT_TRUE(versions->front().full);
}

TEST_F(StreamE2eTest, StdinStreamEndsAtEndOfInputWithEveryLineTrainedOnce) {
  WriteJob("-", /*follow=*/false);
  const pid_t train = testing::Spawn(
      {"/bin/sh", "-c",
       "exec \"$0\" train \"$1\" < \"$2\"", testing::TesseraBinary(), dir_.File("job.yaml"),
       dir_.File("data/train.tsv")},
      dir_.File("train.log"));
  std::optional<int> status = testing::WaitForExit(train, std::chrono::seconds(120));
  const std::string log = testing::ReadFileOrEmpty(dir_.File("train.log"));
  ASSERT_TRUE(status.has_value() && WIFEXITED(*status)) << log;
  EXPECT_EQ(WEXITSTATUS(*status), 0) << log;
  EXPECT_EQ(TrainedExamples(), 18000u) << log;
  nlohmann::json data = LatestDataState();
  ASSERT_TRUE(data.is_object()) << log;
  EXPECT_TRUE(data["chunks"].empty()) << data.dump();
  // Segments of at most batch_size (256) lines went to the spool.
  size_t segments = 0;
  for (const auto& e : fs::directory_iterator(dir_.File("out/spool"))) {
    segments += e.path().filename().string().rfind("seg-", 0) == 0;
  }
  EXPECT_GE(segments, 18000u / 256);
}

// Lines of `path` starting in [begin, end) (end past the file: to its end).
uint64_t LinesStartingIn(const std::string& path, uint64_t begin, uint64_t end) {
  const std::string data = testing::ReadFileOrEmpty(path);
  uint64_t n = 0;
  for (uint64_t p = begin; p < std::min<uint64_t>(end, data.size()); ++p) {
    n += p == 0 || data[p - 1] == '\n';
  }
  return n;
}

// Stopped abruptly (no last version), then resumed: the second run trains
// exactly what the newest version had not, nothing lost, nothing twice.
TEST_F(StreamE2eTest, ResumedFollowingJobTrainsExactlyWhatTheLastVersionHadNot) {
  const std::string incoming = dir_.File("incoming");
  fs::create_directories(incoming);
  WriteJob("incoming", /*follow=*/true);
  Produce(incoming, "part-000.tsv", 0, 6000);
  const std::vector<std::string> slow = {"--set", "train.batch_size=32"};
  std::vector<std::string> argv = {testing::TesseraBinary(), "train", dir_.File("job.yaml")};
  argv.insert(argv.end(), slow.begin(), slow.end());
  pid_t train = testing::Spawn(argv, dir_.File("train1.log"));
  ASSERT_TRUE(testing::PollUntil(
      [&] {
        nlohmann::json data = LatestDataState();
        return data.is_object() && data.value("watermark", "").find("part-000") != std::string::npos;
      },
      std::chrono::seconds(60)))
      << testing::ReadFileOrEmpty(dir_.File("train1.log"));
  auto latest = [&] {
    StatusOr<std::vector<uint64_t>> v = models::ListVersionNumbers(dir_.File("pub"));
    return v.ok() && !v->empty() ? v->back() : 0;
  };
  const uint64_t before = latest();
  Produce(incoming, "part-001.tsv", 6000, 12000);
  // One more version, then stop at once (the second signal skips the
  // drain): wherever training was in part-001 then.
  ASSERT_TRUE(testing::PollUntil([&] { return latest() > before; }, std::chrono::seconds(60)));
  ::kill(train, SIGTERM);
  ::kill(train, SIGTERM);
  std::optional<int> status = testing::WaitForExit(train, std::chrono::seconds(60));
  ASSERT_TRUE(status.has_value());

  // What the newest version says is left: untrained byte ranges of the
  // files it saw; files after them were never seen.
  const nlohmann::json left = LatestDataState();
  ASSERT_TRUE(left.is_object());
  uint64_t expected = 0;
  for (const nlohmann::json& c : left["chunks"]) {
    expected += LinesStartingIn(c["path"].get<std::string>(), c["trained"].get<uint64_t>(),
                                c["end"].get<uint64_t>());
  }
  bool saw_part1 = false;
  for (const nlohmann::json& f : left["stream_files"]) {
    saw_part1 |= f["path"].get<std::string>().find("part-001") != std::string::npos;
  }
  if (!saw_part1 && left.value("watermark", "").find("part-001") == std::string::npos) {
    expected += 6000;
  }
  Produce(incoming, "part-002.tsv", 12000, 18000);
  expected += 6000;

  std::printf("resuming: %zu chunks left, %llu lines to train (of 18000)\n", left["chunks"].size(),
              static_cast<unsigned long long>(expected));
  argv.push_back("--resume");
  train = testing::Spawn(argv, dir_.File("train2.log"));
  ASSERT_TRUE(testing::PollUntil(
      [&] {
        nlohmann::json data = LatestDataState();
        return data.is_object() && data.value("watermark", "").find("part-002") != std::string::npos;
      },
      std::chrono::seconds(60)))
      << testing::ReadFileOrEmpty(dir_.File("train2.log"));
  ::kill(train, SIGTERM);
  status = testing::WaitForExit(train, std::chrono::seconds(60));
  const std::string log = testing::ReadFileOrEmpty(dir_.File("train2.log"));
  ASSERT_TRUE(status && WIFEXITED(*status)) << log;
  EXPECT_EQ(WEXITSTATUS(*status), 0) << log;
  EXPECT_EQ(TrainedExamples(), expected) << log;
  EXPECT_LT(expected, 18000u);  // the first run's trained part is not repeated
}

// The loop the product exists for: events stream in, training publishes
// every second, and `tessera serve` (following the publish directory)
// scores with the fresh version: a burst of clicks on one item visibly
// raises that item's predicted CTR within seconds.
TEST_F(StreamE2eTest, BurstOfClicksRaisesTheServedScoreWithinSeconds) {
  const std::string incoming = dir_.File("incoming");
  fs::create_directories(incoming);
  WriteJob("incoming", /*follow=*/true);
  Produce(incoming, "part-000.tsv", 0, lines_.size());
  const pid_t train = testing::Spawn({testing::TesseraBinary(), "train", dir_.File("job.yaml"),
                                      "--set", "publish.interval_s=1"},
                                     dir_.File("train.log"));
  ASSERT_TRUE(testing::PollUntil(
      [&] {
        nlohmann::json data = LatestDataState();
        return data.is_object() && data.value("watermark", "").find("part-000") != std::string::npos;
      },
      std::chrono::seconds(60)))
      << testing::ReadFileOrEmpty(dir_.File("train.log"));
  int port = 0;
  const pid_t serve = testing::StartServe(
      testing::TesseraBinary(), {"--model-dir", dir_.File("pub"), "--name", "ctr", "--poll-ms", "50"},
      dir_.File("serve.log"), &port);
  ASSERT_GT(serve, 0) << testing::ReadFileOrEmpty(dir_.File("serve.log"));

  httplib::Client client("127.0.0.1", port);
  const std::string item = "i7";
  const std::string request =
      R"({"instances": [{"user_id": "u3", "item_id": ")" + item +
      R"(", "category": "c1", "brand": "b1", "price": 20.0, "hour": "12", "device": "ios"}]})";
  auto score = [&](uint64_t* version) -> double {
    auto r = client.Post("/v1/models/ctr:predict", request, "application/json");
    if (!r || r->status != 200) return -1;
    nlohmann::json j = nlohmann::json::parse(r->body, nullptr, false);
    if (!j.is_object()) return -1;
    *version = std::stoull(j.value("model_version", "0"));
    return j["predictions"][0].get<double>();
  };
  uint64_t v0 = 0;
  const double before = score(&v0);
  ASSERT_GT(before, 0) << testing::ReadFileOrEmpty(dir_.File("serve.log"));

  // 2000 clicks on the item, from the users of the data.
  std::vector<std::string> burst;
  for (size_t i = 0; i < 2000; ++i) {
    // label \t user \t item \t rest: label 1, the item replaced.
    const std::string& l = lines_[i];
    const size_t user = l.find('\t'), item_at = l.find('\t', user + 1),
                 rest = l.find('\t', item_at + 1);
    std::string clicked(1, '1');
    clicked.append(l, user, item_at - user).append(1, '\t').append(item).append(l, rest);
    burst.push_back(std::move(clicked));
  }
  lines_.insert(lines_.end(), burst.begin(), burst.end());
  const auto sent = std::chrono::steady_clock::now();
  Produce(incoming, "part-001.tsv", lines_.size() - burst.size(), lines_.size());
  double after = before;
  uint64_t v1 = v0;
  ASSERT_TRUE(testing::PollUntil(
      [&] {
        after = score(&v1);
        return after > before + 0.1;
      },
      std::chrono::seconds(20)))
      << "score " << before << " -> " << after << " (version " << v0 << " -> " << v1 << ")\n"
      << testing::ReadFileOrEmpty(dir_.File("train.log"));
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - sent).count();
  std::printf("burst of clicks on %s: served score %.4f -> %.4f after %.2f s (version %llu -> %llu)\n",
              item.c_str(), before, after, seconds, static_cast<unsigned long long>(v0),
              static_cast<unsigned long long>(v1));
  EXPECT_GT(v1, v0);
  ::kill(serve, SIGTERM);
  ::kill(train, SIGTERM);
  std::optional<int> serve_status = testing::WaitForExit(serve, std::chrono::seconds(30));
  std::optional<int> train_status = testing::WaitForExit(train, std::chrono::seconds(60));
  ASSERT_TRUE(serve_status && WIFEXITED(*serve_status));
  EXPECT_EQ(WEXITSTATUS(*serve_status), 0);
  ASSERT_TRUE(train_status && WIFEXITED(*train_status))
      << testing::ReadFileOrEmpty(dir_.File("train.log"));
  EXPECT_EQ(WEXITSTATUS(*train_status), 0);
}

}  // namespace
}  // namespace tessera
