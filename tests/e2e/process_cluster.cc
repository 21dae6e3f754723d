#include "tests/e2e/process_cluster.h"

#include <signal.h>
#include <sys/wait.h>

#include <filesystem>
#include <iostream>
#include <optional>

#include <nlohmann/json.hpp>

#include "absl/strings/numbers.h"
#include "tests/e2e/process_util.h"

namespace tessera::testing {

namespace fs = std::filesystem;
using std::chrono::seconds;

void ProcessCluster::KillAll() {
  for (ProcessNode& node : nodes_) {
    if (node.pid > 0 && ProcessAlive(node.pid)) ::kill(node.pid, SIGKILL);
    if (node.pid > 0) (void)WaitForExit(node.pid, seconds(10));
    node.pid = -1;
  }
}

std::string ProcessCluster::LogPath(const ProcessNode& node) const {
  return spec_.dir + "/" + node.name + ".log";
}

std::string ProcessCluster::Logs() const {
  std::string all;
  for (const ProcessNode& node : nodes_) {
    all += "\n==== " + LogPath(node) + " ====\n" + ReadFileOrEmpty(LogPath(node));
  }
  return all;
}

std::vector<std::string> ProcessCluster::NodeArgs(const std::string& role) const {
  return {spec_.tessera, role, "--bind=tcp://127.0.0.1:0", "--host=127.0.0.1",
          "--metrics-host=127.0.0.1", "--metrics-port=0"};
}

Status ProcessCluster::Start() {
  const std::string& dir = spec_.dir;
  std::vector<std::string> argv = NodeArgs("scheduler");
  for (const std::string& flag :
       {"--servers=" + std::to_string(spec_.servers), "--workers=" + std::to_string(spec_.workers),
        "--heartbeat-interval-ms=" + std::to_string(spec_.heartbeat_interval_ms),
        "--heartbeat-timeout-ms=" + std::to_string(spec_.heartbeat_timeout_ms),
        "--address-file=" + dir + "/scheduler.addr", "--cluster-file=" + dir + "/cluster.json",
        std::string("--tables-for=train"), std::string("--"), "--job=" + spec_.job}) {
    argv.push_back(flag);
  }
  nodes_.push_back({"scheduler", -1, 0});
  nodes_.back().pid = Spawn(argv, LogPath(nodes_.back()));
  const pid_t sched = nodes_.back().pid;
  if (!PollUntil([&] { return fs::exists(dir + "/scheduler.addr") || !ProcessAlive(sched); },
                 seconds(60))) {
    return DeadlineExceededError("the scheduler wrote no scheduler.addr in 60 s");
  }
  scheduler_address_ = ReadFileOrEmpty(dir + "/scheduler.addr");
  scheduler_address_ = scheduler_address_.substr(0, scheduler_address_.find_first_of("\r\n"));
  if (scheduler_address_.empty()) return UnavailableError("the scheduler wrote no address");
  for (int s = 0; s < spec_.servers; ++s) {
    nodes_.push_back({"server-" + std::to_string(s), -1, 0});
    if (!StartServer(s)) return InternalError("cannot spawn server " + std::to_string(s));
  }
  for (int w = 0; w < spec_.workers; ++w) {
    argv = NodeArgs("worker");
    for (const std::string& flag :
         {"--scheduler=" + scheduler_address_, "--rank=" + std::to_string(w),
          std::string("--program=train"), std::string("--"), "--job=" + spec_.job}) {
      argv.push_back(flag);
    }
    nodes_.push_back({"worker-" + std::to_string(w), -1, 0});
    nodes_.back().pid = Spawn(argv, LogPath(nodes_.back()));
  }
  if (!PollUntil([&] { return fs::exists(dir + "/cluster.json") || !ProcessAlive(sched); },
                 seconds(120))) {
    return DeadlineExceededError("the scheduler wrote no cluster.json in 120 s");
  }
  nlohmann::json doc =
      nlohmann::json::parse(ReadFileOrEmpty(dir + "/cluster.json"), nullptr, false);
  if (doc.is_discarded() || !doc.contains("nodes")) {
    return UnavailableError("no cluster.json with a node list (the scheduler exited?)");
  }
  for (const nlohmann::json& entry : doc["nodes"]) {
    const std::string role = entry.value("role", "");
    const int id = entry.value("id", -1);
    const std::string name = role == "scheduler" ? role : role + "-" + std::to_string(id);
    for (ProcessNode& node : nodes_) {
      if (node.name == name) node.metrics_port = entry.value("metrics_port", 0);
    }
  }
  for (const ProcessNode& node : nodes_) {
    if (node.metrics_port <= 0) {
      return DataLossError("cluster.json lists no metrics port of " + node.name);
    }
  }
  return OkStatus();
}

bool ProcessCluster::StartServer(int rank) {
  std::vector<std::string> argv = NodeArgs("server");
  argv.push_back("--scheduler=" + scheduler_address_);
  argv.push_back("--rank=" + std::to_string(rank));
  ProcessNode& node = server(rank);
  // Appends: a replacement's log follows its predecessor's.
  node.pid = Spawn(argv, LogPath(node));
  node.metrics_port = 0;
  return node.pid > 0;
}

bool ProcessCluster::WaitAll(seconds timeout, bool any_exit_code) {
  bool ok = true;
  for (ProcessNode& node : nodes_) {
    if (node.pid <= 0) continue;
    std::optional<int> status = WaitForExit(node.pid, timeout);
    if (!status || !WIFEXITED(*status) || (!any_exit_code && WEXITSTATUS(*status) != 0)) {
      std::cerr << node.name << " did not exit " << (any_exit_code ? "" : "0 ") << "(log: "
                << LogPath(node) << ")\n";
      ok = false;
    }
    if (status) node.pid = -1;
  }
  return ok;
}

std::map<std::string, double> ScrapeMetrics(int port) {
  std::map<std::string, double> out;
  std::optional<HttpResult> page = HttpGet(port, "/metrics");
  if (!page || page->status != 200) return out;
  size_t pos = 0;
  while (pos < page->body.size()) {
    size_t end = page->body.find('\n', pos);
    if (end == std::string::npos) end = page->body.size();
    const std::string line = page->body.substr(pos, end - pos);
    pos = end + 1;
    if (line.empty() || line[0] == '#') continue;
    const size_t space = line.find(' ');
    if (space == std::string::npos || line.find('{') < space) continue;
    double value = 0;
    if (absl::SimpleAtod(line.substr(space + 1), &value)) out[line.substr(0, space)] = value;
  }
  return out;
}

std::optional<double> ScrapeMetric(int port, const std::string& name) {
  std::map<std::string, double> samples = ScrapeMetrics(port);
  auto it = samples.find(name);
  if (it == samples.end()) return std::nullopt;
  return it->second;
}

}  // namespace tessera::testing
