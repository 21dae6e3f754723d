// A/B arms and request ids: the stable split (serving/arm_split.h), the
// --arm flag, and RestApi routing requests to arms and naming them.
#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/metrics.h"
#include "serving/arm_split.h"
#include "serving/rest_api.h"
#include "tests/serving/publish_fixture.h"
#include "tests/serving/serving_test_util.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace tessera::serving {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

TEST(ArmSplitTest, ParsesArmFlags) {
  ASSERT_OK_AND_ASSIGN(ArmSpec a, ParseArmSpec("b=runs/b:c/publish:0.25"));
  EXPECT_EQ(a.name, "b");
  EXPECT_EQ(a.dir, "runs/b:c/publish");
  EXPECT_EQ(a.weight, 0.25);
  for (const char* bad : {"b", "b=dir", "=dir:1", "b=:1", "b=dir:", "b=dir:x", "b=dir:0",
                          "b=dir:-1", "b c=dir:1", "b=dir:inf"}) {
    const Status s = ParseArmSpec(bad).status();
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(std::string(s.message()), HasSubstr(absl::StrCat("--arm ", bad))) << bad;
  }
  EXPECT_FALSE(ArmSplit::Create({}).ok());
  EXPECT_FALSE(ArmSplit::Create({{"a", 1}, {"a", 2}}).ok());
  EXPECT_FALSE(ArmSplit::Create({{"a", 1}, {"b", 0}}).ok());
}

TEST(ArmSplitTest, TheHashIsFixedAndTheSplitFollowsTheWeights) {
  // Golden values: the split must not change across builds or restarts.
  EXPECT_DOUBLE_EQ(ArmSplit::Unit("u1"), ArmSplit::Unit(std::string("u") + "1"));
  EXPECT_NEAR(ArmSplit::Unit(""), 0.763694525, 1e-9);
  EXPECT_NEAR(ArmSplit::Unit("u1"), 0.720128729, 1e-9);
  ASSERT_OK_AND_ASSIGN(ArmSplit split, ArmSplit::Create({{"a", 3}, {"b", 1}, {"c", 4}}));
  EXPECT_DOUBLE_EQ(split.share(0), 0.375);
  EXPECT_DOUBLE_EQ(split.share(2), 0.5);
  constexpr int kUsers = 20000;
  std::vector<int> counts(3, 0);
  for (int u = 0; u < kUsers; ++u) {
    const std::string user = absl::StrCat("user", u);
    const size_t arm = split.Pick(user);
    ASSERT_EQ(split.Pick(user), arm);  // stable
    ++counts[arm];
  }
  // Binomial standard deviation at n = 20000 is under 0.0036: 4 sigma.
  for (size_t arm = 0; arm < 3; ++arm) {
    EXPECT_NEAR(counts[arm] / double{kUsers}, split.share(arm), 0.015) << split.name(arm);
  }
}

class RestApiArmsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    model_dir_ = dir_.File("model");
    ASSERT_OK(testing::WriteTestModel(model_dir_, "deepfm"));
    RestApiOptions options;
    options.name = "ctr";
    options.arms = {{"control", 9}, {"treatment", 1}};
    options.request_id_prefix = "test";
    api_ = std::make_unique<RestApi>(options, &metrics_);
  }
  void LoadBoth() {
    for (size_t arm = 0; arm < 2; ++arm) {
      ASSERT_OK_AND_ASSIGN(std::unique_ptr<ServedModel> model, ServedModel::Load(model_dir_, ""));
      api_->slot(arm)->Set(std::move(model));
    }
  }
  json Post(const std::string& verb, const json& body, int* status = nullptr) {
    const HttpResponse r = api_->Handle({"POST", "/v1/models/ctr:" + verb, body.dump()});
    if (status != nullptr) *status = r.status;
    return json::parse(r.body, nullptr, false);
  }

  tessera::testing::TempDir dir_;
  std::string model_dir_;
  MetricsRegistry metrics_;
  std::unique_ptr<RestApi> api_;
};

TEST_F(RestApiArmsTest, ReadyOnlyWhenEveryArmHasAModel) {
  EXPECT_FALSE(api_->ready());
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<ServedModel> model, ServedModel::Load(model_dir_, ""));
  api_->slot(0)->Set(std::move(model));
  EXPECT_FALSE(api_->ready());
  LoadBoth();
  EXPECT_TRUE(api_->ready());
  const HttpResponse r = api_->Handle({"GET", "/v1/models/ctr", ""});
  ASSERT_EQ(r.status, 200);
  const json status = json::parse(r.body);
  ASSERT_EQ(status["model_version_status"].size(), 2u);
  EXPECT_EQ(status["model_version_status"][1]["arm"], "treatment");
  EXPECT_EQ(status["model_version_status"][1]["version"], "1700000000");
}

TEST_F(RestApiArmsTest, AUserAlwaysGetsOneArmAndRepliesNameIt) {
  LoadBoth();
  ASSERT_OK_AND_ASSIGN(ArmSplit split, ArmSplit::Create({{"control", 9}, {"treatment", 1}}));
  std::map<std::string, int> per_arm;
  std::set<std::string> ids;
  for (int u = 0; u < 400; ++u) {
    const std::string user = absl::StrCat("shopper", u);
    std::string arm;
    for (int repeat = 0; repeat < 2; ++repeat) {
      int status = 0;
      const json reply =
          repeat == 0
              ? Post("predict", {{"instances", {{{"user_id", user}}, json::object()}}}, &status)
              : Post("recommend", {{"context", {{"user_id", user}}}, {"candidates", {"i1", "i2"}}},
                     &status);
      ASSERT_EQ(status, 200) << reply.dump();
      EXPECT_EQ(reply["model_version"], "1700000000");
      ASSERT_TRUE(reply["arm"].is_string());
      if (repeat == 1) {
        EXPECT_EQ(reply["arm"], arm) << user;  // same user, same arm
      }
      arm = reply["arm"];
      EXPECT_TRUE(ids.insert(reply["request_id"].get<std::string>()).second);
      EXPECT_THAT(reply["request_id"].get<std::string>(), ::testing::StartsWith("test-"));
    }
    EXPECT_EQ(arm, split.name(split.Pick(user)));
    ++per_arm[arm];
  }
  EXPECT_NEAR(per_arm["treatment"] / 400.0, 0.1, 0.05);
  const std::string text = metrics_.SerializeText();
  EXPECT_THAT(text,
              HasSubstr(absl::StrCat(
                  R"(tessera_serving_requests_total{arm="treatment",code="200",route="predict"} )",
                  per_arm["treatment"])));
  EXPECT_THAT(text,
              HasSubstr(absl::StrCat(
                  R"(tessera_serving_requests_total{arm="control",code="200",route="recommend"} )",
                  per_arm["control"])));
}

TEST_F(RestApiArmsTest, RequestIdsAreEchoedOrMadeUnique) {
  LoadBoth();
  int status = 0;
  json reply = Post("predict", {{"instances", json::array()}, {"request_id", "click-42"}}, &status);
  ASSERT_EQ(status, 200) << reply.dump();
  EXPECT_EQ(reply["request_id"], "click-42");
  // Without a user the arm follows the request id: the same id, the same arm.
  const std::string arm = reply["arm"];
  EXPECT_EQ(Post("predict", {{"instances", {json::object()}}, {"request_id", "click-42"}})["arm"],
            arm);
  reply = Post("predict", {{"instances", json::array()}, {"request_id", 7}}, &status);
  EXPECT_EQ(status, 400);
  EXPECT_THAT(reply["error"].get<std::string>(), HasSubstr("request_id: expected a string"));
  EXPECT_EQ(Post("predict", {{"instances", json::array()}, {"request_id", ""}}, &status), reply);
  EXPECT_EQ(status, 400);
  EXPECT_EQ(Post("predict", {{"instances", json::array()}, {"request_id", std::string(129, 'x')}},
                 &status),
            reply);
  const json a = Post("predict", {{"instances", json::array()}});
  const json b = Post("predict", {{"instances", json::array()}});
  EXPECT_NE(a["request_id"], b["request_id"]);
}

}  // namespace
}  // namespace tessera::serving
