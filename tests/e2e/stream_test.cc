// Streaming training as real processes: a job following a directory drains
// and exits 0 on SIGTERM after publishing a last version; a job reading
// stdin ends at EOF. Every example is trained exactly once.
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>

#include <chrono>
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

}  // namespace
}  // namespace tessera
