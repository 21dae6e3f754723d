// Serving under concurrent delta application: client threads hammer
// :predict (through RestApi::Handle, the code the HTTP routes call) while
// the test publishes versions and the follower applies them. Every reply
// must equal, bit for bit, the reference predictions of the version it
// names: a reply mixing versions, or computed from a half-applied delta,
// would match no version.
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "common/metrics.h"
#include "serving/model_follower.h"
#include "serving/rest_api.h"
#include "tests/serving/publish_fixture.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace tessera::serving {
namespace {

using nlohmann::json;
using testing::Publisher;

class HotSwapTest : public ::testing::TestWithParam<std::string> {};

TEST_P(HotSwapTest, RepliesNeverMixVersions) {
  constexpr int kClients = 3;
  constexpr uint64_t kVersions = 10;
  constexpr int kRepliesPerVersion = 6;  // seen before the next version
  tessera::testing::TempDir tmp;
  const std::string dir = tmp.File("publish");
  std::filesystem::create_directories(dir);
  ASSERT_OK_AND_ASSIGN(Publisher publisher, Publisher::Create(dir, GetParam()));
  ASSERT_OK(publisher.PublishFull().status());
  MetricsRegistry metrics;
  RestApi api({.name = "ctr"}, &metrics);
  FollowerOptions options;
  options.publish_dir = dir;
  ModelFollower follower(options, api.slot(0), &metrics);
  ASSERT_OK(follower.PollOnce());

  const std::vector<json> instances = testing::SomeInstances(20);
  const std::string body = json{{"instances", instances}}.dump();
  absl::Mutex mu;
  std::map<uint64_t, std::vector<std::vector<float>>> replies;  // by version
  int failures = 0;
  std::atomic<bool> stop{false};
  std::vector<std::thread> clients;
  struct Joiner {  // also when an assertion returns early
    std::atomic<bool>* stop;
    std::vector<std::thread>* threads;
    ~Joiner() {
      *stop = true;
      for (std::thread& t : *threads) t.join();
    }
  } joiner{&stop, &clients};
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&] {
      while (!stop.load()) {
        const HttpResponse r = api.Handle({"POST", "/v1/models/ctr:predict", body});
        const json reply = json::parse(r.body, nullptr, false);
        absl::MutexLock lock(&mu);
        if (r.status != 200 || !reply.contains("model_version")) {
          ++failures;
          continue;
        }
        std::vector<float> p;
        for (const json& x : reply["predictions"]) p.push_back(static_cast<float>(x.get<double>()));
        replies[std::stoull(reply["model_version"].get<std::string>())].push_back(std::move(p));
      }
    });
  }
  // Publish one version at a time (two at once every third time, so the
  // follower also catches up over several deltas), each once the clients
  // have seen the previous one.
  for (uint64_t v = 1; v < kVersions;) {
    {
      absl::MutexLock lock(&mu);
      const auto seen = [&] { return replies[v].size() >= kRepliesPerVersion || failures > 0; };
      ASSERT_TRUE(mu.AwaitWithTimeout(absl::Condition(&seen), absl::Seconds(60)));
    }
    ASSERT_OK(publisher.PublishDelta().status());
    if (v % 3 == 0) ASSERT_OK(publisher.PublishDelta().status());
    ASSERT_OK(follower.PollOnce());
    v = follower.version();
  }
  stop = true;
  for (std::thread& t : clients) t.join();
  clients.clear();

  EXPECT_EQ(failures, 0);
  size_t checked = 0;
  for (const auto& [version, got] : replies) {
    ASSERT_OK_AND_ASSIGN(std::vector<float> expected, publisher.Predictions(version, instances));
    for (const std::vector<float>& p : got) {
      ASSERT_EQ(p, expected) << "a reply named version " << version;
      ++checked;
    }
  }
  EXPECT_GE(replies.size(), 7u);  // versions skipped when two come at once
  EXPECT_GE(checked, 7u * kRepliesPerVersion);
  // Versions really differ, so a mixed reply could not pass.
  ASSERT_OK_AND_ASSIGN(std::vector<float> first, publisher.Predictions(1, instances));
  ASSERT_OK_AND_ASSIGN(std::vector<float> second, publisher.Predictions(2, instances));
  for (size_t i = 0; i < instances.size(); ++i) EXPECT_NE(first[i], second[i]) << i;
}

INSTANTIATE_TEST_SUITE_P(Models, HotSwapTest, ::testing::Values("deepfm", "din"));

}  // namespace
}  // namespace tessera::serving
