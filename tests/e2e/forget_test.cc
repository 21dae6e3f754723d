// `tessera forget` and the id salt as real processes: a salted job follows a
// directory and publishes every 0.5 s; `tessera forget` erases three users'
// rows through the scheduler, every server confirms, and the next published
// version (a delta carrying tombstones) no longer holds them while the other
// users' rows stay. `tessera serve` with another salt refuses the model.
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "gtest/gtest.h"
#include "models/feature_hash.h"
#include "models/model_versions.h"
#include "models/saved_model.h"
#include "tests/e2e/process_util.h"
#include "tests/testing/temp_dir.h"

namespace tessera {
namespace {

namespace fs = std::filesystem;

constexpr char kSalt[] = "forget-e2e: a long random salt";

class ForgetE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(testing::TesseraBinary().empty()) << "TESSERA_BIN unset";
    ::unsetenv("TESSERA_SCHEDULER");
    ::unsetenv("TESSERA_ID_SALT_FILE");
    // Inherited by every process this test starts: the job, forget, serve.
    ::setenv("TESSERA_CLUSTER_TOKEN", "forget-e2e-token", 1);
    ::setenv("TESSERA_ID_SALT", kSalt, 1);
    const pid_t gen = testing::Spawn({testing::TesseraBinary(), "gen", "--out", dir_.File("data"),
                                      "--rows", "3000", "--users", "60", "--items", "100",
                                      "--seed", "9"},
                                     dir_.File("gen.log"));
    std::optional<int> status = testing::WaitForExit(gen, std::chrono::seconds(60));
    ASSERT_TRUE(status && WIFEXITED(*status) && WEXITSTATUS(*status) == 0);
  }
  void TearDown() override {
    ::unsetenv("TESSERA_CLUSTER_TOKEN");
    ::unsetenv("TESSERA_ID_SALT");
  }

  uint64_t Latest() {
    StatusOr<std::vector<uint64_t>> v = models::ListVersionNumbers(dir_.File("pub"));
    return v.ok() && !v->empty() ? v->back() : 0;
  }
  // The newest version's "data" training state (null if none).
  nlohmann::json LatestDataState() {
    const uint64_t v = Latest();
    if (v == 0) return nullptr;
    StatusOr<models::ModelManifest> m =
        models::ReadManifest(models::VersionDir(dir_.File("pub"), v));
    if (!m.ok()) return nullptr;
    nlohmann::json state = nlohmann::json::parse(m->training_state_json, nullptr, false);
    return state.is_object() && state.contains("data") ? state["data"] : nlohmann::json();
  }

  testing::TempDir dir_;
};

TEST_F(ForgetE2eTest, ForgottenUsersLeaveEveryServerAndEveryLaterVersion) {
  const std::string incoming = dir_.File("incoming");
  fs::create_directories(incoming);
  {
    std::ofstream job(dir_.File("job.yaml"));
    job << "data: {schema: data/schema.yaml, train: incoming, follow: true}\n"
           "model: {type: lr, embedding_dim: 4}\n"
           "train: {batch_size: 256, max_batch_delay_ms: 50}\n"
           "cluster: {servers: 2, workers: 1}\n"
           "publish: {model_dir: pub, interval_s: 0.5, full_every: 1000, keep: 100}\n"
           "output_dir: out\n";
  }
  fs::copy_file(dir_.File("data/train.tsv"), incoming + "/.part-000.tsv");
  fs::rename(incoming + "/.part-000.tsv", incoming + "/part-000.tsv");
  const pid_t train = testing::Spawn({testing::TesseraBinary(), "train", dir_.File("job.yaml")},
                                     dir_.File("train.log"));
  auto log = [&] { return testing::ReadFileOrEmpty(dir_.File("train.log")); };
  // Every line trained and published.
  ASSERT_TRUE(testing::PollUntil(
      [&] {
        nlohmann::json data = LatestDataState();
        return data.is_object() && data.value("watermark", "").find("part-000") != std::string::npos;
      },
      std::chrono::seconds(40)))
      << log();
  const uint64_t trained = Latest();
  const models::FeatureHasher salt = models::FeatureHasher::FromSalt(kSalt);
  StatusOr<models::SavedModel> before =
      models::LoadModelVersion(dir_.File("pub"), trained, /*with_state=*/false);
  ASSERT_TRUE(before.ok()) << before.status();
  EXPECT_EQ(before->manifest.id_salt_fingerprint, salt.fingerprint());
  const int users = before->schema.TableIndex("user_id");
  ASSERT_GE(users, 0);
  // Three users that have rows, and one that stays.
  std::vector<std::string> forget;
  std::string kept;
  for (int u = 0; u <= 60 && (forget.size() < 3 || kept.empty()); ++u) {
    std::string id = "u";
    id.append(std::to_string(u));
    if (!before->sparse[users].index.contains(salt.Hash(users, id))) continue;
    EXPECT_FALSE(before->sparse[users].index.contains(models::HashFeature(users, id)));
    if (forget.size() < 3) {
      forget.push_back(id);
    } else {
      kept = id;
    }
  }
  ASSERT_EQ(forget.size(), 3u);
  ASSERT_FALSE(kept.empty());

  const pid_t tool = testing::Spawn(
      {testing::TesseraBinary(), "forget", "--job", dir_.File("job.yaml"), "--table", "user_id",
       "--ids", forget[0] + "," + forget[1] + "," + forget[2], "--run", dir_.File("out"),
       "--timeout-s", "20"},
      dir_.File("forget.log"));
  std::optional<int> status = testing::WaitForExit(tool, std::chrono::seconds(30));
  const std::string out = testing::ReadFileOrEmpty(dir_.File("forget.log"));
  ASSERT_TRUE(status && WIFEXITED(*status)) << out;
  EXPECT_EQ(WEXITSTATUS(*status), 0) << out << log();
  // One confirmation per server; the three rows erased between them.
  const std::regex line(R"(server/(\d+): erased (\d+) / requested (\d+))");
  std::set<int> servers;
  uint64_t erased = 0, requested = 0;
  for (std::sregex_iterator it(out.begin(), out.end(), line), end; it != end; ++it) {
    servers.insert(std::stoi((*it)[1]));
    erased += std::stoull((*it)[2]);
    requested += std::stoull((*it)[3]);
  }
  EXPECT_EQ(servers, (std::set<int>{0, 1})) << out;
  EXPECT_EQ(erased, 3u) << out;
  EXPECT_EQ(requested, 3u) << out;
  EXPECT_NE(out.find("every server confirmed"), std::string::npos) << out;

  // The next version, a delta, carries the tombstones.
  const uint64_t after_forget = Latest();
  ASSERT_TRUE(testing::PollUntil([&] { return Latest() > after_forget; },
                                 std::chrono::seconds(20)))
      << log();
  StatusOr<models::SavedModel> after =
      models::LoadModelVersion(dir_.File("pub"), Latest(), /*with_state=*/false);
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(after->manifest.kind, models::SnapshotKind::kDelta);
  for (const std::string& id : forget) {
    EXPECT_FALSE(after->sparse[users].index.contains(salt.Hash(users, id))) << id;
  }
  EXPECT_TRUE(after->sparse[users].index.contains(salt.Hash(users, kept)));
  EXPECT_EQ(after->sparse[users].num_rows(), before->sparse[users].num_rows() - 3);

  // Serving the first (full) version with another salt is refused.
  const pid_t serve = testing::Spawn(
      {"/bin/sh", "-c", "TESSERA_ID_SALT=wrong exec \"$0\" serve --model-dir \"$1\" --port 0",
       testing::TesseraBinary(), models::VersionDir(dir_.File("pub"), 1)},
      dir_.File("serve.log"));
  status = testing::WaitForExit(serve, std::chrono::seconds(20));
  const std::string served = testing::ReadFileOrEmpty(dir_.File("serve.log"));
  ASSERT_TRUE(status && WIFEXITED(*status)) << served;
  EXPECT_NE(WEXITSTATUS(*status), 0) << served;
  EXPECT_NE(served.find("another id salt"), std::string::npos) << served;

  ASSERT_EQ(::kill(train, SIGTERM), 0);
  status = testing::WaitForExit(train, std::chrono::seconds(30));
  ASSERT_TRUE(status && WIFEXITED(*status)) << log();
  EXPECT_EQ(WEXITSTATUS(*status), 0) << log();
}

}  // namespace
}  // namespace tessera
