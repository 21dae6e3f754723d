// ModelFollower driven by PollOnce from the test thread (no timing): a
// chain is followed delta by delta, a gap reloads, errors are counted and
// retried without ever serving a half-applied version.
#include "serving/model_follower.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/metrics.h"
#include "tests/serving/publish_fixture.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace tessera::serving {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using ::tessera::testing::TempDir;
using ::testing::HasSubstr;
using testing::Publisher;

class ModelFollowerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = tmp_.File("publish");
    fs::create_directories(dir_);
    ASSERT_OK_AND_ASSIGN(Publisher p, Publisher::Create(dir_, "deepfm"));
    publisher_ = std::make_unique<Publisher>(std::move(p));
    FollowerOptions options;
    options.publish_dir = dir_;
    options.arm = "a";
    options.unix_ms = [this] { return now_ms_; };
    follower_ = std::make_unique<ModelFollower>(options, &slot_, &metrics_);
  }

  // Expects the slot to serve `version` with exactly its reference scores.
  void ExpectServes(uint64_t version) {
    std::shared_ptr<const ServedModel> model = slot_.Get();
    ASSERT_NE(model, nullptr);
    EXPECT_EQ(model->version_number(), version);
    EXPECT_EQ(model->version(), std::to_string(version));
    EXPECT_EQ(follower_->version(), version);
    const std::vector<json> instances = testing::SomeInstances(30);
    ScoreResult got;
    ASSERT_OK(model->Score(instances, "instances", false, &got));
    ASSERT_OK_AND_ASSIGN(std::vector<float> expected, publisher_->Predictions(version, instances));
    EXPECT_EQ(got.predictions, expected) << "version " << version;
  }
  double Metric(const std::string& series) {
    const std::string text = metrics_.SerializeText();
    const size_t at = text.find(series + " ");
    if (at == std::string::npos) return -1;
    return std::stod(text.substr(at + series.size() + 1));
  }

  TempDir tmp_;
  std::string dir_;
  std::unique_ptr<Publisher> publisher_;
  ModelSlot slot_;
  MetricsRegistry metrics_;
  int64_t now_ms_ = 1700000002500;
  std::unique_ptr<ModelFollower> follower_;
};

TEST_F(ModelFollowerTest, WaitsForAFirstVersionThenFollowsTheChain) {
  EXPECT_OK(follower_->PollOnce());  // nothing published yet
  EXPECT_EQ(slot_.Get(), nullptr);
  ASSERT_OK(publisher_->PublishFull().status());
  ASSERT_OK(follower_->PollOnce());
  ExpectServes(1);
  for (int i = 0; i < 3; ++i) ASSERT_OK(publisher_->PublishDelta().status());
  ASSERT_OK(follower_->PollOnce());  // applies 2, 3 and 4
  ExpectServes(4);
  ASSERT_OK(publisher_->PublishDelta().status());
  ASSERT_OK(follower_->PollOnce());
  ExpectServes(5);
  ASSERT_OK(follower_->PollOnce());  // nothing new
  ExpectServes(5);
  EXPECT_EQ(Metric(R"(tessera_serving_deltas_applied_total{arm="a"})"), 4);
  EXPECT_EQ(Metric(R"(tessera_serving_reloads_total{arm="a"})"), 1);
  EXPECT_EQ(Metric(R"(tessera_serving_model_version{arm="a"})"), 5);
  // created 1700000000000 ms, now 2.5 s later.
  EXPECT_EQ(Metric(R"(tessera_serving_version_lag_seconds{arm="a"})"), 2.5);
  EXPECT_EQ(Metric(R"(tessera_serving_apply_errors_total{arm="a"})"),
            -1);  // none
  EXPECT_TRUE(follower_->WaitForVersion(5, absl::ZeroDuration()));
  EXPECT_FALSE(follower_->WaitForVersion(6, absl::ZeroDuration()));
}

// Versions trained without an id salt, followed with one: refused (counted,
// retried), never served; the same directory followed unsalted is served.
TEST_F(ModelFollowerTest, AVersionOfAnotherIdSaltIsNeverServed) {
  ASSERT_OK(publisher_->PublishFull().status());
  FollowerOptions options;
  options.publish_dir = dir_;
  options.arm = "salted";
  options.id_hasher = models::FeatureHasher::FromSalt("a salt");
  ModelSlot slot;
  ModelFollower salted(options, &slot, &metrics_);
  const Status s = salted.PollOnce();
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("trained without an id salt"));
  EXPECT_EQ(slot.Get(), nullptr);
  EXPECT_EQ(Metric(R"(tessera_serving_apply_errors_total{arm="salted"})"), 1);
  ASSERT_OK(follower_->PollOnce());
  ExpectServes(1);
}

TEST_F(ModelFollowerTest, AGapReloadsFromTheNewestFullSnapshot) {
  ASSERT_OK(publisher_->PublishFull().status());
  ASSERT_OK(publisher_->PublishDelta().status());
  ASSERT_OK(follower_->PollOnce());
  ExpectServes(2);
  ASSERT_OK(publisher_->PublishDelta().status());  // 3, removed below
  ASSERT_OK(publisher_->PublishFull().status());   // 4
  ASSERT_OK(publisher_->PublishDelta().status());  // 5
  ASSERT_OK_AND_ASSIGN(auto removed, models::RemoveOldVersions(dir_, 2));
  ASSERT_EQ(removed, (std::vector<uint64_t>{1, 2, 3}));
  ASSERT_OK(follower_->PollOnce());
  ExpectServes(5);
  EXPECT_EQ(Metric(R"(tessera_serving_reloads_total{arm="a"})"), 2);
  // The standby copy was rebuilt from the reload: deltas apply again.
  ASSERT_OK(publisher_->PublishDelta().status());
  ASSERT_OK(follower_->PollOnce());
  ExpectServes(6);
  EXPECT_EQ(Metric(R"(tessera_serving_deltas_applied_total{arm="a"})"),
            1);  // 1 and 2 loaded whole
}

TEST_F(ModelFollowerTest, ACorruptDeltaIsCountedRetriedAndNeverServed) {
  ASSERT_OK(publisher_->PublishFull().status());
  ASSERT_OK(follower_->PollOnce());
  ASSERT_OK(publisher_->PublishDelta().status());
  // Corrupt the last row file of version 2 (the dense tables are read last).
  const std::string v2 = models::VersionDir(dir_, 2);
  std::string victim;
  for (const auto& e : fs::recursive_directory_iterator(v2)) {
    if (e.path().extension() == ".rows") victim = std::max(victim, e.path().string());
  }
  const std::string good = v2 + ".good";
  fs::copy(v2, good, fs::copy_options::recursive);
  {
    std::fstream f(victim, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(kRowFileHeaderBytes + 30));
    f.put('\x55');
  }
  for (int i = 0; i < 2; ++i) {
    const Status s = follower_->PollOnce();
    EXPECT_EQ(s.code(), StatusCode::kDataLoss) << s;
    EXPECT_THAT(std::string(s.message()), HasSubstr(victim));
    ExpectServes(1);
  }
  EXPECT_EQ(Metric(R"(tessera_serving_apply_errors_total{arm="a"})"), 2);
  // Repaired (as a writer would republish it): the standby copy was not
  // touched by the failed attempts, so both copies serve version 2 exactly.
  fs::remove_all(v2);
  fs::rename(good, v2);
  ASSERT_OK(follower_->PollOnce());
  ExpectServes(2);
  ASSERT_OK(publisher_->PublishDelta().status());
  ASSERT_OK(follower_->PollOnce());
  ExpectServes(3);
}

TEST_F(ModelFollowerTest, AVersionRemovedWhileReadIsAnErrorNotACrash) {
  ASSERT_OK(publisher_->PublishFull().status());
  ASSERT_OK(follower_->PollOnce());
  ASSERT_OK(publisher_->PublishDelta().status());
  // Half deleted: the manifest is there but a row file is gone.
  for (const auto& e : fs::recursive_directory_iterator(models::VersionDir(dir_, 2))) {
    if (e.path().extension() == ".rows") {
      fs::remove(e.path());
      break;
    }
  }
  EXPECT_EQ(follower_->PollOnce().code(), StatusCode::kNotFound);
  ExpectServes(1);
  // A newer full snapshot lets it move past the broken delta.
  ASSERT_OK(publisher_->PublishDelta().status());  // 3 on the broken 2
  ASSERT_OK(publisher_->PublishFull().status());   // 4
  EXPECT_OK(follower_->PollOnce());
  ExpectServes(4);
}

TEST_F(ModelFollowerTest, LoadsTheCatalogWithTheFirstVersion) {
  ASSERT_OK(publisher_->PublishFull().status());
  FollowerOptions options;
  options.publish_dir = dir_;
  options.catalog_path = tmp_.File("items.tsv");
  ModelSlot slot;
  ModelFollower follower(options, &slot, &metrics_);
  const Status missing = follower.PollOnce();  // no catalogue yet: not served
  EXPECT_EQ(missing.code(), StatusCode::kNotFound) << missing;
  EXPECT_EQ(slot.Get(), nullptr);
  std::ofstream(options.catalog_path) << "0\t\ti1\t3\t\n0\t\ti2\t6\t\n";
  ASSERT_OK(follower.PollOnce());
  ASSERT_NE(slot.Get(), nullptr);
  ASSERT_NE(slot.Get()->catalog(), nullptr);
  EXPECT_EQ(slot.Get()->catalog()->size(), 2u);
  ASSERT_OK(publisher_->PublishDelta().status());
  ASSERT_OK(follower.PollOnce());
  EXPECT_EQ(slot.Get()->version_number(), 2u);
  EXPECT_EQ(slot.Get()->catalog()->size(), 2u);  // shared by both copies
}

TEST(ModelFollowerStartTest, TheThreadFollowsUntilStopped) {
  TempDir tmp;
  const std::string dir = tmp.File("publish");
  fs::create_directories(dir);
  ASSERT_OK_AND_ASSIGN(Publisher publisher, Publisher::Create(dir, "din"));
  ModelSlot slot;
  MetricsRegistry metrics;
  FollowerOptions options;
  options.publish_dir = dir;
  options.poll_interval = std::chrono::milliseconds(5);
  ModelFollower follower(options, &slot, &metrics);
  follower.Start();
  ASSERT_OK(publisher.PublishFull().status());
  ASSERT_TRUE(follower.WaitForVersion(1, absl::Seconds(30)));
  ASSERT_OK(publisher.PublishDelta().status());
  ASSERT_OK(publisher.PublishDelta().status());
  ASSERT_TRUE(follower.WaitForVersion(3, absl::Seconds(30)));
  follower.Stop();
  EXPECT_EQ(slot.Get()->version_number(), 3u);
}

}  // namespace
}  // namespace tessera::serving
