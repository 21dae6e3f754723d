#include "scheduler/cluster_status.h"

#include <chrono>

#include <nlohmann/json.hpp>

#include "gtest/gtest.h"

namespace tessera::scheduler {
namespace {

using std::chrono::milliseconds;

protocol::NodeStats ServerStats(uint64_t rows, uint64_t keys) {
  protocol::NodeStats s;
  s.has_server_stats = true;
  s.rows = rows;
  s.bytes = rows * 100;
  s.keys_total = keys;
  return s;
}

TEST(NodeReportsTest, RatesAreTheCounterIncreaseOverTheTimeBetweenReports) {
  NodeReports reports;
  const NodeId server{Role::kServer, 1};
  const Clock::TimePoint t0{};
  EXPECT_EQ(reports.Find(server), nullptr);
  reports.Record(server, ServerStats(10, 1000), t0);
  ASSERT_NE(reports.Find(server), nullptr);
  EXPECT_EQ(reports.Find(server)->keys_per_s, 0);  // first report: no rate yet
  reports.Record(server, ServerStats(20, 6000), t0 + milliseconds(500));
  EXPECT_DOUBLE_EQ(reports.Find(server)->keys_per_s, 10000);  // 5000 keys in 0.5 s
  EXPECT_EQ(reports.Find(server)->stats.rows, 20u);

  protocol::NodeStats worker;
  worker.has_worker_stats = true;
  worker.examples_total = 400;
  const NodeId w{Role::kWorker, 0};
  reports.Record(w, worker, t0);
  worker.examples_total = 1400;
  reports.Record(w, worker, t0 + milliseconds(2000));
  EXPECT_DOUBLE_EQ(reports.Find(w)->samples_per_s, 500);
}

TEST(NodeReportsTest, ARestartedNodeCountsFromZeroAndEraseForgets) {
  NodeReports reports;
  const NodeId server{Role::kServer, 0};
  const Clock::TimePoint t0{};
  reports.Record(server, ServerStats(1, 9000), t0);
  reports.Record(server, ServerStats(1, 300), t0 + milliseconds(1000));  // counter went down
  EXPECT_DOUBLE_EQ(reports.Find(server)->keys_per_s, 300);
  // Same instant (a simulated clock that did not move): figures, old rate.
  reports.Record(server, ServerStats(5, 400), t0 + milliseconds(1000));
  EXPECT_DOUBLE_EQ(reports.Find(server)->keys_per_s, 300);
  EXPECT_EQ(reports.Find(server)->stats.rows, 5u);
  reports.Erase(server);
  EXPECT_EQ(reports.Find(server), nullptr);
}

ClusterStatus SampleStatus() {
  ClusterStatus s;
  s.now_unix_ms = 1'800'000'002'500;
  s.running = true;
  s.epoch = 3;
  s.replication = 2;
  s.num_slots = 16;
  s.nodes = {
      {.info = {kSchedulerId, "tcp://10.0.0.1:5000", 9100, 11, "h0"},
       .health = NodeHealth::kAlive,
       .heartbeat_age_s = std::nullopt},
      {.info = {{Role::kServer, 0}, "tcp://10.0.0.2:5001", 9101, 12, "h1"},
       .health = NodeHealth::kAlive,
       .heartbeat_age_s = 0.25},
      {.info = {{Role::kServer, 1}, "tcp://10.0.0.3:5002", 9102, 13, "h2"},
       .health = NodeHealth::kDead,
       .heartbeat_age_s = 7.5},
      {.info = {{Role::kWorker, 0}, "tcp://10.0.0.4:5003", 9103, 14, "h3"},
       .health = NodeHealth::kLate,
       .heartbeat_age_s = 2.5}};
  s.shards = {{.server = 0, .slots = 16, .reported = true, .rows = 1200, .bytes = 98304,
               .keys_per_s = 5000.5},
              {.server = 1, .slots = 0, .reported = false, .rows = 0, .bytes = 0,
               .keys_per_s = 0}};
  s.workers = {{.worker = 0, .reported = true, .examples = 25600, .steps = 100,
                .samples_per_s = 2560, .staleness = 1}};
  s.chunks_completed = 3;
  s.chunks_total = 12;
  s.model_version = 7;
  s.model_created_unix_ms = 1'800'000'001'000;
  return s;
}

TEST(ClusterStatusJsonTest, DocumentHoldsEveryNodeShardWorkerAndTheModel) {
  const nlohmann::json doc = nlohmann::json::parse(ClusterStatusJson(SampleStatus()));
  EXPECT_EQ(doc["running"], true);
  EXPECT_EQ(doc["epoch"], 3);
  EXPECT_EQ(doc["replication"], 2);
  EXPECT_EQ(doc["num_slots"], 16);
  ASSERT_EQ(doc["nodes"].size(), 4u);
  EXPECT_EQ(doc["nodes"][0]["role"], "scheduler");
  EXPECT_TRUE(doc["nodes"][0]["heartbeat_age_s"].is_null());
  EXPECT_EQ(doc["nodes"][1]["name"], "server/0");
  EXPECT_EQ(doc["nodes"][1]["address"], "tcp://10.0.0.2:5001");
  EXPECT_EQ(doc["nodes"][1]["pid"], 12);
  EXPECT_EQ(doc["nodes"][1]["metrics_port"], 9101);
  EXPECT_EQ(doc["nodes"][1]["host"], "h1");
  EXPECT_DOUBLE_EQ(doc["nodes"][1]["heartbeat_age_s"].get<double>(), 0.25);
  EXPECT_EQ(doc["nodes"][2]["health"], "dead");
  EXPECT_EQ(doc["nodes"][3]["health"], "late");
  EXPECT_EQ(doc["nodes"][3]["role"], "worker");

  ASSERT_EQ(doc["shards"].size(), 2u);
  EXPECT_EQ(doc["shards"][0]["rows"], 1200);
  EXPECT_EQ(doc["shards"][0]["bytes"], 98304);
  EXPECT_DOUBLE_EQ(doc["shards"][0]["keys_per_s"].get<double>(), 5000.5);
  EXPECT_EQ(doc["shards"][1]["reported"], false);
  EXPECT_TRUE(doc["shards"][1]["rows"].is_null());  // not 0: nothing known
  EXPECT_EQ(doc["shards"][1]["slots"], 0);

  ASSERT_EQ(doc["workers"].size(), 1u);
  EXPECT_EQ(doc["workers"][0]["examples"], 25600);
  EXPECT_EQ(doc["workers"][0]["steps"], 100);
  EXPECT_EQ(doc["workers"][0]["staleness"], 1);
  EXPECT_DOUBLE_EQ(doc["workers"][0]["samples_per_s"].get<double>(), 2560);

  EXPECT_EQ(doc["progress"]["chunks_completed"], 3);
  EXPECT_EQ(doc["progress"]["chunks_total"], 12);
  EXPECT_EQ(doc["model"]["version"], 7);
  EXPECT_DOUBLE_EQ(doc["model"]["freshness_s"].get<double>(), 1.5);
}

TEST(ClusterStatusJsonTest, NoVersionYetHasNullFreshness) {
  ClusterStatus s = SampleStatus();
  s.model_version = 0;
  s.model_created_unix_ms = 0;
  const nlohmann::json doc = nlohmann::json::parse(ClusterStatusJson(s));
  EXPECT_EQ(doc["model"]["version"], 0);
  EXPECT_TRUE(doc["model"]["freshness_s"].is_null());
  EXPECT_TRUE(doc["model"]["created_unix_ms"].is_null());
}

}  // namespace
}  // namespace tessera::scheduler
