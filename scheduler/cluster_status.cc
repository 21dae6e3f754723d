#include "scheduler/cluster_status.h"

#include <chrono>
#include <string>

#include <nlohmann/json.hpp>

namespace tessera::scheduler {
namespace {

// Increase of a cumulative counter per second; a counter that went down
// (the node restarted) counts from zero.
double Rate(uint64_t before, uint64_t now, double seconds) {
  if (seconds <= 0) return 0;
  const uint64_t delta = now >= before ? now - before : now;
  return static_cast<double>(delta) / seconds;
}

nlohmann::json NodeJson(const NodeStatusRow& row) {
  nlohmann::json j = {{"role", std::string(RoleName(row.info.id.role))},
                      {"id", row.info.id.rank},
                      {"name", row.info.id.ToString()},
                      {"address", row.info.endpoint},
                      {"host", row.info.host},
                      {"pid", row.info.pid},
                      {"metrics_port", row.info.metrics_port},
                      {"health", std::string(NodeHealthName(row.health))}};
  j["heartbeat_age_s"] =
      row.heartbeat_age_s ? nlohmann::json(*row.heartbeat_age_s) : nlohmann::json(nullptr);
  return j;
}

nlohmann::json ShardJson(const ShardStatusRow& row) {
  nlohmann::json j = {{"server", row.server}, {"slots", row.slots}, {"reported", row.reported}};
  if (row.reported) {
    j["rows"] = row.rows;
    j["bytes"] = row.bytes;
    j["keys_per_s"] = row.keys_per_s;
  } else {
    j["rows"] = nullptr;
    j["bytes"] = nullptr;
    j["keys_per_s"] = nullptr;
  }
  return j;
}

nlohmann::json WorkerJson(const WorkerStatusRow& row) {
  nlohmann::json j = {{"worker", row.worker}, {"reported", row.reported}};
  if (row.reported) {
    j["examples"] = row.examples;
    j["steps"] = row.steps;
    j["samples_per_s"] = row.samples_per_s;
    j["staleness"] = row.staleness;
  } else {
    j["examples"] = nullptr;
    j["steps"] = nullptr;
    j["samples_per_s"] = nullptr;
    j["staleness"] = nullptr;
  }
  return j;
}

}  // namespace

void NodeReports::Record(NodeId node, const protocol::NodeStats& stats, Clock::TimePoint at) {
  auto it = reports_.find(node);
  if (it == reports_.end()) {
    reports_.emplace(node, NodeReport{stats, at, 0, 0});
    return;
  }
  NodeReport& report = it->second;
  const double seconds = std::chrono::duration<double>(at - report.at).count();
  if (seconds <= 0) {  // same instant (a simulated clock): keep the rates
    report.stats = stats;
    return;
  }
  report.keys_per_s = Rate(report.stats.keys_total, stats.keys_total, seconds);
  report.samples_per_s = Rate(report.stats.examples_total, stats.examples_total, seconds);
  report.stats = stats;
  report.at = at;
}

void NodeReports::Erase(NodeId node) { reports_.erase(node); }

const NodeReport* NodeReports::Find(NodeId node) const {
  auto it = reports_.find(node);
  return it == reports_.end() ? nullptr : &it->second;
}

std::string_view NodeHealthName(NodeHealth health) {
  switch (health) {
    case NodeHealth::kAlive:
      return "alive";
    case NodeHealth::kLate:
      return "late";
    case NodeHealth::kDead:
      return "dead";
  }
  return "?";
}

std::string ClusterStatusJson(const ClusterStatus& status) {
  nlohmann::json doc;
  doc["time_unix_ms"] = status.now_unix_ms;
  doc["running"] = status.running;
  doc["epoch"] = status.epoch;
  doc["replication"] = status.replication;
  doc["num_slots"] = status.num_slots;
  doc["nodes"] = nlohmann::json::array();
  for (const NodeStatusRow& row : status.nodes) doc["nodes"].push_back(NodeJson(row));
  doc["shards"] = nlohmann::json::array();
  for (const ShardStatusRow& row : status.shards) doc["shards"].push_back(ShardJson(row));
  doc["workers"] = nlohmann::json::array();
  for (const WorkerStatusRow& row : status.workers) doc["workers"].push_back(WorkerJson(row));
  doc["progress"] = {{"chunks_completed", status.chunks_completed},
                     {"chunks_total", status.chunks_total}};
  nlohmann::json model = {{"version", status.model_version}};
  if (status.model_version == 0) {
    model["created_unix_ms"] = nullptr;
    model["freshness_s"] = nullptr;
  } else {
    model["created_unix_ms"] = status.model_created_unix_ms;
    model["freshness_s"] =
        static_cast<double>(status.now_unix_ms - status.model_created_unix_ms) / 1000.0;
  }
  doc["model"] = model;
  return doc.dump();
}

}  // namespace tessera::scheduler
