// The REST API end to end: an HttpServer on 127.0.0.1 (ephemeral port) in
// this process, queried with httplib::Client.
#include "serving/rest_api.h"

#include <gtest/gtest.h>
#include <httplib.h>

#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "tests/serving/serving_test_util.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace tessera::serving {
namespace {

using nlohmann::json;
using ::tessera::testing::TempDir;
using ::testing::HasSubstr;

class RestApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    model_dir_ = dir_.File("model");
    ASSERT_OK(testing::WriteTestModel(model_dir_, "din"));
    catalog_ = dir_.File("items.tsv");
    std::ofstream out(catalog_);
    for (int i = 0; i < 10; ++i) out << "0\t\ti" << i << "\t" << i * 3 << "\t\n";
    out.close();
    api_ = std::make_unique<RestApi>(
        RestApiOptions{.name = "ctr", .max_body_bytes = 64 << 10, .max_instances = 50}, &metrics_);
    api_->Register(&server_);
    ASSERT_OK_AND_ASSIGN(port_, server_.Start("127.0.0.1", 0));
    client_ = std::make_unique<httplib::Client>("127.0.0.1", port_);
  }
  void TearDown() override { server_.Stop(); }

  void Load() {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<ServedModel> model,
                         ServedModel::Load(model_dir_, catalog_));
    served_ = model.get();
    api_->SetModel(std::move(model));
  }

  // POSTs `body` to /v1/models/<path>; returns the status and the JSON reply.
  std::pair<int, json> Post(const std::string& path, const std::string& body) {
    auto res = client_->Post(("/v1/models/" + path).c_str(), body, "application/json");
    if (!res) return {-1, json()};
    return {res->status, json::parse(res->body, nullptr, false)};
  }
  std::pair<int, json> Get(const std::string& path) {
    auto res = client_->Get(path.c_str());
    if (!res) return {-1, json()};
    return {res->status, json::parse(res->body, nullptr, false)};
  }
  // Expects `status` with {"error": "...<message>..."}.
  void ExpectError(const std::pair<int, json>& reply, int status, const std::string& message) {
    EXPECT_EQ(reply.first, status) << reply.second.dump();
    ASSERT_TRUE(reply.second.is_object()) << message;
    EXPECT_THAT(reply.second.value("error", ""), HasSubstr(message));
  }

  TempDir dir_;
  std::string model_dir_, catalog_;
  MetricsRegistry metrics_;
  std::unique_ptr<RestApi> api_;
  HttpServer server_;
  int port_ = 0;
  std::unique_ptr<httplib::Client> client_;
  const ServedModel* served_ = nullptr;
};

TEST_F(RestApiTest, ReadyOnceAModelIsLoadedAndReportsItsVersion) {
  EXPECT_EQ(client_->Get("/healthz")->status, 200);
  EXPECT_EQ(client_->Get("/readyz")->status, 503);
  ExpectError(Get("/v1/models/ctr"), 503, "no model is loaded");
  Load();
  EXPECT_EQ(client_->Get("/readyz")->status, 200);
  const auto [status, body] = Get("/v1/models/ctr");
  EXPECT_EQ(status, 200);
  EXPECT_EQ(body, json::parse(R"({"model_version_status": [{"version": "1700000000",
      "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}]})"));
  ExpectError(Get("/v1/models/other"), 404, "model 'other' not found");
}

TEST_F(RestApiTest, PredictScoresLikeTheModelAndExplains) {
  Load();
  const json instances = json::parse(R"([
      {"user_id": "u1", "item_id": "i9", "price": 12.5, "hist": ["i3", "i7"]},
      {"item_id": "i2"},
      {"user_id": "u99", "item_id": "zzz", "hist": ["i1", "i2", "i3", "i4"]}])");
  ScoreResult expected;
  ASSERT_OK(served_->Score(instances.get<std::vector<json>>(), "instances", true, &expected));
  auto [status, body] = Post("ctr:predict", json{{"instances", instances}}.dump());
  ASSERT_EQ(status, 200) << body.dump();
  ASSERT_EQ(body["predictions"].size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_NEAR(body["predictions"][i].get<double>(), expected.predictions[i], 1e-7);
  }
  EXPECT_EQ(body["model_version"], "1700000000");
  EXPECT_EQ(body["arm"], "default");
  EXPECT_TRUE(body["request_id"].is_string());
  EXPECT_FALSE(body.contains("explanations"));

  std::tie(status, body) =
      Post("ctr:predict", json{{"instances", instances}, {"explain", true}}.dump());
  ASSERT_EQ(status, 200) << body.dump();
  ASSERT_EQ(body["explanations"].size(), 3u);
  const json& e = body["explanations"][2];
  double sum = e["bias"].get<double>();
  for (const auto& [name, value] : e["fields"].items()) sum += value.get<double>();
  EXPECT_NEAR(sum, e["logit"].get<double>(), 1e-4);
  // max_len 3: the most recent three history items, oldest first.
  ASSERT_EQ(e["attention"]["hist"].size(), 3u);
  EXPECT_EQ(e["attention"]["hist"][0]["item"], "i2");
  EXPECT_EQ(e["attention"]["hist"][2]["item"], "i4");
}

TEST_F(RestApiTest, RecommendReturnsTheTopKByScore) {
  Load();
  const json context = {{"user_id", "u3"}, {"hist", {"i1", "i5"}}};
  const json candidates = json::parse(R"(["i1", "i2", {"item_id": "i7", "price": 4}, "i8",
                                          "unknown", {"item_id": "i4"}])");
  auto [status, body] = Post(
      "ctr:recommend", json{{"context", context}, {"candidates", candidates}, {"k", 4}}.dump());
  ASSERT_EQ(status, 200) << body.dump();
  EXPECT_EQ(body["model_version"], "1700000000");
  const json& items = body["items"];
  ASSERT_EQ(items.size(), 4u);
  // Each score is the prediction of the merged instance: candidate fields,
  // then the context, then the catalogue row (price of iN is 3N).
  std::vector<json> merged = {
      {{"user_id", "u3"}, {"hist", {"i1", "i5"}}, {"item_id", "i1"}, {"price", 3}},
      {{"user_id", "u3"}, {"hist", {"i1", "i5"}}, {"item_id", "i2"}, {"price", 6}},
      {{"user_id", "u3"}, {"hist", {"i1", "i5"}}, {"item_id", "i7"}, {"price", 4}},
      {{"user_id", "u3"}, {"hist", {"i1", "i5"}}, {"item_id", "i8"}, {"price", 24}},
      {{"user_id", "u3"}, {"hist", {"i1", "i5"}}, {"item_id", "unknown"}},
      {{"user_id", "u3"}, {"hist", {"i1", "i5"}}, {"item_id", "i4"}}};
  ScoreResult expected;
  ASSERT_OK(served_->Score(merged, "x", false, &expected));
  std::vector<std::pair<float, std::string>> ranked;
  for (size_t i = 0; i < merged.size(); ++i) {
    ranked.emplace_back(expected.predictions[i], merged[i]["item_id"].get<std::string>());
  }
  std::stable_sort(ranked.begin(), ranked.end(),
                   [](const auto& a, const auto& b) { return a.first > b.first; });
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(items[i]["item_id"], ranked[i].second) << i;
    EXPECT_NEAR(items[i]["score"].get<double>(), ranked[i].first, 1e-7);
    if (i > 0) {
      EXPECT_GE(items[i - 1]["score"].get<double>(), items[i]["score"].get<double>());
    }
  }
  // Default k (10) covers all six; explain adds each item's explanation.
  std::tie(status, body) =
      Post("ctr:recommend",
           json{{"context", context}, {"candidates", candidates}, {"explain", true}}.dump());
  ASSERT_EQ(status, 200) << body.dump();
  ASSERT_EQ(body["items"].size(), 6u);
  EXPECT_EQ(body["items"][0]["explanation"]["attention"]["hist"].size(), 2u);
}

TEST_F(RestApiTest, BadRequestsGetJsonErrorsAndAreCounted) {
  Load();
  ExpectError(Post("other:predict", R"({"instances": []})"), 404, "model 'other' not found");
  ExpectError(Post("ctr:explode", R"({"instances": []})"), 404, "no such method");
  ExpectError(Post("ctr:predict", R"({"instances": [)"), 400, "not valid JSON");
  ExpectError(Post("ctr:predict", R"([1, 2])"), 400, "expected an object");
  ExpectError(Post("ctr:predict", R"({"rows": []})"), 400, "rows: unknown key");
  ExpectError(Post("ctr:predict", R"({"instances": {}})"), 400, "instances: expected an array");
  ExpectError(Post("ctr:predict", R"({"instances": [{}, {}, {}, {"price": "12.5"}]})"), 400,
              "instances[3].price: expected a number");
  ExpectError(Post("ctr:predict", R"({"instances": [{"colour": "red"}]})"), 400,
              "instances[0].colour: unknown field");
  ExpectError(Post("ctr:predict", R"({"instances": [], "explain": "yes"})"), 400,
              "explain: expected a boolean");
  ExpectError(Post("ctr:recommend", R"({"context": {"user_id": 1}, "candidates": ["i1"]})"), 400,
              "context.user_id: expected a string");
  ExpectError(Post("ctr:recommend", R"({"candidates": ["i1", {"price": []}]})"), 400,
              "candidates[1].price: expected a number");
  ExpectError(Post("ctr:recommend", R"({"candidates": ["i1", 7]})"), 400,
              "candidates[1]: expected an object or a string");
  ExpectError(Post("ctr:recommend", R"({"candidates": ["i1"], "k": 0})"), 400, "k: expected");
  json many = json::array();
  for (int i = 0; i < 51; ++i) many.push_back(json::object());
  ExpectError(Post("ctr:predict", json{{"instances", many}}.dump()), 413,
              "instances: 51 exceed the limit of 50");
  ExpectError(
      Post("ctr:predict", R"({"instances": [{"user_id": ")" + std::string(70000, 'x') + R"("}]})"),
      413, "exceeds the limit of 65536");
  // The server still answers.
  EXPECT_EQ(Post("ctr:predict", R"({"instances": [{}]})").first, 200);

  const std::string text = client_->Get("/metrics")->body;
  // Refused before an arm was picked (unparsable bodies): arm "".
  EXPECT_THAT(text, HasSubstr(R"(tessera_serving_requests_total{arm="",code="400",route="predict"} 2)"));
  EXPECT_THAT(text, HasSubstr(R"(tessera_serving_requests_total{arm="default",code="400",route="predict"} 5)"));
  EXPECT_THAT(text, HasSubstr(R"(tessera_serving_requests_total{arm="",code="413",route="predict"} 1)"));
  EXPECT_THAT(text, HasSubstr(R"(tessera_serving_requests_total{arm="default",code="413",route="predict"} 1)"));
  EXPECT_THAT(text, HasSubstr(R"(tessera_serving_requests_total{arm="default",code="200",route="predict"} 1)"));
  EXPECT_THAT(text, HasSubstr(R"(tessera_serving_bad_requests_total{reason="unknown_model"} 1)"));
  EXPECT_THAT(text, HasSubstr(R"(tessera_serving_bad_requests_total{reason="malformed_json"} 1)"));
  EXPECT_THAT(text, HasSubstr(R"(tessera_serving_bad_requests_total{reason="body_too_large"} 1)"));
  EXPECT_THAT(text, HasSubstr("tessera_serving_instances_total 1"));
  EXPECT_THAT(text, HasSubstr("tessera_serving_request_latency_seconds_bucket"));
}

TEST_F(RestApiTest, ConcurrentRequestsGetTheirOwnScores) {
  Load();
  // Each thread asks about its own user; every answer must equal the
  // single-threaded score of that instance (models are pooled, not shared).
  constexpr int kThreads = 4;
  std::vector<float> expected(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    ScoreResult r;
    const json instance = {
        {"user_id", absl::StrCat("u", t)}, {"item_id", "i1"}, {"hist", {"i2", "i3"}}};
    ASSERT_OK(served_->Score(std::span<const json>(&instance, 1), "x", false, &r));
    expected[t] = r.predictions[0];
  }
  std::vector<int> mismatches(kThreads, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      httplib::Client client("127.0.0.1", port_);
      const std::string body =
          json{{"instances",
                {{{"user_id", absl::StrCat("u", t)}, {"item_id", "i1"}, {"hist", {"i2", "i3"}}}}}}
              .dump();
      for (int i = 0; i < 25; ++i) {
        auto res = client.Post("/v1/models/ctr:predict", body, "application/json");
        if (!res || res->status != 200 ||
            std::abs(json::parse(res->body)["predictions"][0].get<double>() - expected[t]) > 1e-7) {
          ++mismatches[t];
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(mismatches, std::vector<int>(kThreads, 0));
}

}  // namespace
}  // namespace tessera::serving
