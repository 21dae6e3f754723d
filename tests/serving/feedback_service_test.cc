// Impressions, feedback and A/B results in serving (serving/feedback_service.h,
// serving/instance_tsv.h): through the REST API on 127.0.0.1 (ephemeral
// port), with the event log written to a temporary directory.
#include "serving/feedback_service.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "common/clock.h"
#include "serving/feedback/ab_stats.h"
#include "serving/feedback/event_log.h"
#include "serving/feedback/event_log_writer.h"
#include "models/tsv_parser.h"
#include "serving/instance_encoder.h"
#include "serving/instance_tsv.h"
#include "serving/rest_api.h"
#include "tests/serving/serving_test_util.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"
// After Eigen (via models/): httplib's macros break Eigen's headers.
#include <httplib.h>

namespace tessera::serving {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using ::testing::HasSubstr;

class FeedbackServiceTest : public ::testing::Test {
 protected:
  void TearDown() override { server_.Stop(); }

  // Serves the test model on `arms`, remembering `max_requests` requests.
  void Start(const std::vector<ArmWeight>& arms, size_t max_requests) {
    model_dir_ = dir_.File("model");
    ASSERT_OK(testing::WriteTestModel(model_dir_, "deepfm"));
    feedback::EventLogWriterOptions log_options;
    log_options.dir = dir_.File("events");
    ASSERT_OK_AND_ASSIGN(log_, feedback::EventLogWriter::Open(log_options, &clock_, &metrics_));
    RestApiOptions options;
    options.name = "ctr";
    options.arms = arms;
    options.request_id_prefix = "test";
    api_ = std::make_unique<RestApi>(options, &metrics_);
    std::vector<std::string> names;
    for (const ArmWeight& a : arms) names.push_back(a.name);
    service_ = std::make_unique<FeedbackService>(
        FeedbackOptions{.max_requests = max_requests, .max_body_bytes = 4096}, names, log_.get(),
        &clock_, &metrics_);
    api_->set_feedback(service_.get());
    for (size_t arm = 0; arm < arms.size(); ++arm) {
      ASSERT_OK_AND_ASSIGN(std::unique_ptr<ServedModel> model, ServedModel::Load(model_dir_, ""));
      api_->slot(arm)->Set(std::move(model));
    }
    api_->Register(&server_);
    service_->Register(&server_);
    ASSERT_OK_AND_ASSIGN(port_, server_.Start("127.0.0.1", 0));
    client_ = std::make_unique<httplib::Client>("127.0.0.1", port_);
  }

  std::pair<int, json> Post(const std::string& path, const std::string& body) {
    auto res = client_->Post(path.c_str(), body, "application/json");
    if (!res) return {-1, json()};
    return {res->status, json::parse(res->body, nullptr, false)};
  }
  std::pair<int, json> Feedback(const std::string& request_id, const std::string& item,
                                const std::string& event = "click") {
    return Post("/v1/feedback",
                json{{"request_id", request_id}, {"item_id", item}, {"event", event}}.dump());
  }
  json Ab() {
    auto res = client_->Get("/v1/ab");
    EXPECT_TRUE(res && res->status == 200);
    return res ? json::parse(res->body, nullptr, false) : json();
  }
  // Every record written so far, as lines.
  std::vector<std::string> LogLines() {
    EXPECT_TRUE(log_->Flush(std::chrono::seconds(30)));
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(dir_.File("events"))) {
      names.push_back(e.path().string());
    }
    std::sort(names.begin(), names.end());
    std::vector<std::string> lines;
    for (const std::string& name : names) {
      std::ifstream in(name);
      for (std::string line; std::getline(in, line);) lines.push_back(line);
    }
    return lines;
  }
  void ExpectError(const std::pair<int, json>& reply, int status, const std::string& message) {
    EXPECT_EQ(reply.first, status) << reply.second.dump();
    EXPECT_THAT(reply.second.value("error", ""), HasSubstr(message));
  }

  tessera::testing::TempDir dir_;
  std::string model_dir_;
  SimulatedClock clock_;
  MetricsRegistry metrics_;
  std::unique_ptr<feedback::EventLogWriter> log_;
  std::unique_ptr<RestApi> api_;
  std::unique_ptr<FeedbackService> service_;
  HttpServer server_;
  int port_ = 0;
  std::unique_ptr<httplib::Client> client_;
};

TEST_F(FeedbackServiceTest, RecommendLogsTheReturnedItemsAndFeedbackOnThem) {
  Start({{"default", 1.0}}, 100);
  const auto [status, reply] = Post(
      "/v1/models/ctr:recommend",
      R"({"context": {"user_id": "u3", "hist": ["i1", "i2"]}, "k": 2,
          "candidates": [{"item_id": "i4", "price": 2.5}, {"item_id": "i5"}, {"item_id": "i6"}]})");
  ASSERT_EQ(status, 200) << reply.dump();
  const std::string request_id = reply["request_id"];
  EXPECT_EQ(request_id, "test-1");  // generated: the request had none
  ASSERT_EQ(reply["items"].size(), 2u);
  std::vector<std::string> lines = LogLines();
  ASSERT_EQ(lines.size(), 2u);  // the returned items only
  ASSERT_OK_AND_ASSIGN(models::Schema schema, models::Schema::Parse(
                                                  models::testing::kTestSchema, "test schema"));
  models::TsvParser parser(&schema);
  for (size_t i = 0; i < 2; ++i) {
    feedback::RecordKind kind;
    feedback::ImpressionRecord r;
    feedback::FeedbackRecord f;
    ASSERT_OK(feedback::ParseRecord(lines[i], &kind, &r, &f));
    EXPECT_EQ(kind, feedback::RecordKind::kImpression);
    EXPECT_EQ(r.request_id, request_id);
    EXPECT_EQ(r.item_id, reply["items"][i]["item_id"]);
    EXPECT_EQ(r.arm, "default");
    EXPECT_EQ(r.model_version, reply["model_version"]);
    EXPECT_FLOAT_EQ(r.score, reply["items"][i]["score"].get<float>());
    EXPECT_EQ(r.unix_ms, clock_.UnixMillis());
    // The features are the schema-TSV columns training parses.
    models::Example ex;
    std::string reason;
    EXPECT_EQ(parser.Parse("1\t" + r.features, &ex, &reason), models::LineKind::kOk) << reason;
    EXPECT_THAT(r.features, HasSubstr(absl::StrCat("u3\t", r.item_id, "\t")));
    EXPECT_THAT(r.features, HasSubstr("\ti1,i2"));
  }
  const std::string clicked = reply["items"][1]["item_id"];
  clock_.AdvanceTime(std::chrono::seconds(3));
  const auto [fstatus, freply] = Feedback(request_id, clicked);
  ASSERT_EQ(fstatus, 200) << freply.dump();
  EXPECT_EQ(freply["arm"], "default");
  EXPECT_EQ(freply["model_version"], reply["model_version"]);
  lines = LogLines();
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[2], absl::StrCat("F\t", clock_.UnixMillis(), "\t", request_id, "\t", clicked,
                                   "\tclick\t", clock_.UnixMillis() - 3000, "\tdefault"));
  const json ab = Ab();
  EXPECT_EQ(ab["arms"][0]["impressions"], 2);
  EXPECT_EQ(ab["arms"][0]["clicks"], 1);
  EXPECT_DOUBLE_EQ(ab["arms"][0]["ctr"].get<double>(), 0.5);
  EXPECT_EQ(ab["arms"][0]["versions"][0]["model_version"], reply["model_version"]);
  EXPECT_THAT(metrics_.SerializeText(),
              HasSubstr("tessera_serving_feedback_accepted_total{event=\"click\"} 1"));
}

TEST_F(FeedbackServiceTest, PredictLogsEveryInstanceUnderTheGivenRequestId) {
  Start({{"default", 1.0}}, 100);
  const auto [status, reply] = Post(
      "/v1/models/ctr:predict",
      R"({"request_id": "mine", "instances": [{"user_id": "u1", "item_id": "i1"}, {"user_id": "u2"}]})");
  ASSERT_EQ(status, 200) << reply.dump();
  EXPECT_EQ(reply["request_id"], "mine");
  const std::vector<std::string> lines = LogLines();
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_THAT(lines[0], HasSubstr("\tmine\ti1\tdefault\t"));
  EXPECT_THAT(lines[1], HasSubstr("\tmine\t\tdefault\t"));  // no item id
  EXPECT_EQ(Feedback("mine", "i1").first, 200);
}

TEST_F(FeedbackServiceTest, BadFeedbackGetsClearErrorsAndCounters) {
  Start({{"default", 1.0}}, 100);
  const auto [status, reply] =
      Post("/v1/models/ctr:recommend", R"({"context": {"user_id": "u1"}, "candidates": ["i1", "i2"]})");
  ASSERT_EQ(status, 200) << reply.dump();
  const std::string id = reply["request_id"];
  ExpectError(Post("/v1/feedback", "{not json"), 400, "not valid JSON");
  ExpectError(Post("/v1/feedback", "[1]"), 400, "expected an object, got array");
  ExpectError(Post("/v1/feedback", R"({"request_id": "x", "event": "click"})"), 400,
              "item_id: missing");
  ExpectError(Post("/v1/feedback", R"({"request_id": 7, "item_id": "i1", "event": "click"})"), 400,
              "request_id: expected a non-empty string, got number");
  ExpectError(Post("/v1/feedback",
                   json{{"request_id", id}, {"item_id", "i1"}, {"event", "click"}, {"x", 1}}.dump()),
              400, "x: unknown key");
  ExpectError(Feedback(id, "i1", "like"), 400, "'like' is not an event");
  ExpectError(Feedback("nope", "i1"), 404, "request_id 'nope': not served here");
  ExpectError(Feedback(id, "i9"), 404, "item_id 'i9': not returned by request");
  EXPECT_EQ(Feedback(id, "i1").first, 200);
  ExpectError(Feedback(id, "i1"), 409, "duplicate");
  EXPECT_EQ(Feedback(id, "i1", "purchase").first, 200);  // another event: fine
  ExpectError(Post("/v1/feedback", std::string(5000, ' ')), 413, "exceeds the limit");
  const std::string text = metrics_.SerializeText();
  EXPECT_THAT(text, HasSubstr("tessera_serving_feedback_rejected_total{reason=\"invalid_request\"} 5"));
  EXPECT_THAT(text, HasSubstr("tessera_serving_feedback_rejected_total{reason=\"malformed_json\"} 1"));
  EXPECT_THAT(text, HasSubstr("tessera_serving_feedback_rejected_total{reason=\"unknown_request\"} 1"));
  EXPECT_THAT(text, HasSubstr("tessera_serving_feedback_rejected_total{reason=\"unknown_item\"} 1"));
  EXPECT_THAT(text, HasSubstr("tessera_serving_feedback_rejected_total{reason=\"duplicate\"} 1"));
  // Refused feedback never reaches the log or the results.
  EXPECT_EQ(LogLines().size(), 4u);  // 2 impressions, a click, a purchase
  EXPECT_EQ(service_->ab().arm_counts(0).clicks, 1u);
  EXPECT_EQ(service_->ab().arm_counts(0).purchases, 1u);
}

TEST_F(FeedbackServiceTest, OldRequestsAreForgottenBeyondTheCap) {
  Start({{"default", 1.0}}, 2);
  std::vector<std::string> ids;
  for (int i = 0; i < 3; ++i) {
    const auto [status, reply] =
        Post("/v1/models/ctr:recommend", R"({"context": {"user_id": "u1"}, "candidates": ["i1"]})");
    ASSERT_EQ(status, 200);
    ids.push_back(reply["request_id"]);
  }
  ExpectError(Feedback(ids[0], "i1"), 404, "older than the last 2 requests");
  EXPECT_EQ(Feedback(ids[1], "i1").first, 200);
  EXPECT_EQ(Feedback(ids[2], "i1").first, 200);
}

TEST_F(FeedbackServiceTest, AbResultsPerArmWithTheTestAgainstTheControl) {
  Start({{"control", 1}, {"treatment", 1}}, 1000);
  // Users land on arms by a stable hash; show items until each arm has 20.
  std::map<std::string, std::vector<std::string>> ids;  // arm -> request ids
  for (int u = 0; ids["control"].size() < 20 || ids["treatment"].size() < 20; ++u) {
    ASSERT_LT(u, 1000);
    const auto [status, reply] = Post(
        "/v1/models/ctr:recommend",
        json{{"context", {{"user_id", absl::StrCat("user", u)}}}, {"candidates", {"i1"}}}.dump());
    ASSERT_EQ(status, 200);
    ids[reply["arm"]].push_back(reply["request_id"]);
  }
  const size_t n_control = ids["control"].size(), n_treatment = ids["treatment"].size();
  for (int i = 0; i < 2; ++i) ASSERT_EQ(Feedback(ids["control"][i], "i1").first, 200);
  for (int i = 0; i < 8; ++i) ASSERT_EQ(Feedback(ids["treatment"][i], "i1").first, 200);
  const json ab = Ab();
  EXPECT_EQ(ab["control"], "control");
  ASSERT_EQ(ab["arms"].size(), 2u);
  EXPECT_EQ(ab["arms"][0]["impressions"], n_control);
  EXPECT_EQ(ab["arms"][1]["clicks"], 8);
  const feedback::CtrInterval ci = feedback::WilsonInterval(8, n_treatment);
  EXPECT_DOUBLE_EQ(ab["arms"][1]["ctr_low"].get<double>(), ci.low);
  EXPECT_DOUBLE_EQ(ab["arms"][1]["ctr_high"].get<double>(), ci.high);
  const feedback::ZTest t = feedback::TwoProportionZTest(8, n_treatment, 2, n_control);
  ASSERT_EQ(ab["tests"].size(), 1u);
  EXPECT_EQ(ab["tests"][0]["arm"], "treatment");
  EXPECT_EQ(ab["tests"][0]["versus"], "control");
  EXPECT_DOUBLE_EQ(ab["tests"][0]["z"].get<double>(), t.z);
  EXPECT_DOUBLE_EQ(ab["tests"][0]["p_value"].get<double>(), t.p_value);
  EXPECT_GT(t.z, 0);
  EXPECT_THAT(metrics_.SerializeText(),
              HasSubstr("tessera_serving_ab_clicks_total{arm=\"treatment\"} 8"));
}

TEST(InstanceTsvTest, TheColumnsParseToWhatTheEncoderEncodes) {
  ASSERT_OK_AND_ASSIGN(models::Schema schema,
                       models::Schema::Parse(models::testing::kTestSchema, "test schema"));
  const json instance = json::parse(
      R"({"user_id": "u\t1", "price": 0.1, "hist": ["a", "", "b", "c", "d,e"]})");
  const std::string columns = InstanceTsv(schema, instance);
  EXPECT_EQ(columns, "u 1\t\t0.1\tb,c,d e");
  models::TsvParser parser(&schema);
  models::Example from_tsv, from_json;
  std::string reason;
  ASSERT_EQ(parser.Parse("0\t" + columns, &from_tsv, &reason), models::LineKind::kOk) << reason;
  json clean = instance;
  clean["user_id"] = "u 1";
  clean["hist"] = json::array({"a", "b", "c", "d e"});
  InstanceEncoder encoder(&schema);
  ASSERT_OK(encoder.Encode(clean, "x", &from_json, nullptr));
  EXPECT_EQ(from_tsv.keys, from_json.keys);
  EXPECT_EQ(from_tsv.key_offsets, from_json.key_offsets);
  EXPECT_EQ(from_tsv.numeric, from_json.numeric);
}

}  // namespace
}  // namespace tessera::serving
