#include "tools/cli/cluster_file.h"

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

namespace tessera::cli {

std::vector<ClusterNodeRecord> ClusterRecords(const protocol::NodeInfo& scheduler,
                                              const protocol::ClusterView& view) {
  std::vector<ClusterNodeRecord> nodes;
  auto add = [&nodes](const protocol::NodeInfo& info) {
    nodes.push_back({info.id.role, info.id.rank, info.pid, info.endpoint, info.metrics_port});
  };
  add(scheduler);
  for (const protocol::NodeInfo& info : view.servers) add(info);
  for (const protocol::NodeInfo& info : view.workers) add(info);
  return nodes;
}

std::string ClusterJson(const std::vector<ClusterNodeRecord>& nodes) {
  nlohmann::json list = nlohmann::json::array();
  for (const ClusterNodeRecord& node : nodes) {
    list.push_back({{"role", std::string(RoleName(node.role))},
                    {"id", node.id},
                    {"pid", node.pid},
                    {"addr", node.addr},
                    {"metrics_port", node.metrics_port}});
  }
  return nlohmann::json{{"nodes", list}}.dump(2) + "\n";
}

StatusOr<std::vector<ClusterNodeRecord>> ParseClusterJson(std::string_view json) {
  nlohmann::json doc = nlohmann::json::parse(json, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object() || !doc.contains("nodes") ||
      !doc["nodes"].is_array()) {
    return InvalidArgumentError("cluster.json: expected an object with a \"nodes\" array");
  }
  std::vector<ClusterNodeRecord> nodes;
  for (const nlohmann::json& entry : doc["nodes"]) {
    if (!entry.is_object()) return InvalidArgumentError("cluster.json: node is not an object");
    auto integer = [&entry](const char* key) {
      return entry.contains(key) && entry[key].is_number_integer();
    };
    if (!entry.contains("role") || !entry["role"].is_string() || !entry.contains("addr") ||
        !entry["addr"].is_string() || !integer("id") || !integer("pid") ||
        !integer("metrics_port")) {
      return InvalidArgumentError("cluster.json: node lacks role, id, pid, addr or metrics_port");
    }
    ClusterNodeRecord node;
    if (!ParseRole(entry["role"].get<std::string>(), &node.role)) {
      return InvalidArgumentError("cluster.json: unknown role " + entry["role"].dump());
    }
    node.id = entry["id"].get<int32_t>();
    node.pid = entry["pid"].get<int64_t>();
    node.addr = entry["addr"].get<std::string>();
    node.metrics_port = entry["metrics_port"].get<int32_t>();
    nodes.push_back(std::move(node));
  }
  return nodes;
}

Status WriteFileAtomically(const std::string& path, std::string_view contents) {
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out.write(contents.data(), static_cast<std::streamsize>(contents.size()));
    out.flush();
    if (!out) return UnavailableError("cannot write " + tmp);
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    return UnavailableError("cannot rename " + tmp + " to " + path);
  }
  return OkStatus();
}

StatusOr<std::string> ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFoundError("cannot open " + path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace tessera::cli
