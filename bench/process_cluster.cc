#include "bench/process_cluster.h"

#include <signal.h>
#include <sys/wait.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <optional>

#include <nlohmann/json.hpp>

#include "absl/strings/numbers.h"
#include "tests/e2e/process_util.h"

namespace tessera::bench {

namespace fs = std::filesystem;
using std::chrono::seconds;
using testing::ReadFileOrEmpty;

ProcessCluster::~ProcessCluster() {
  for (ProcessNode& node : nodes_) {
    if (node.pid > 0 && testing::ProcessAlive(node.pid)) ::kill(node.pid, SIGKILL);
    if (node.pid > 0) (void)testing::WaitForExit(node.pid, seconds(10));
  }
}

std::vector<std::string> ProcessCluster::NodeArgs(const std::string& role) const {
  return {spec_.tessera, role, "--bind=tcp://127.0.0.1:0", "--host=127.0.0.1",
          "--metrics-host=127.0.0.1", "--metrics-port=0"};
}

bool ProcessCluster::Start() {
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
  nodes_.push_back({"scheduler", testing::Spawn(argv, dir + "/scheduler.log"), 0});
  const pid_t sched = nodes_.back().pid;
  if (!testing::PollUntil(
          [&] { return fs::exists(dir + "/scheduler.addr") || !testing::ProcessAlive(sched); },
          seconds(60))) {
    return false;
  }
  scheduler_address_ = ReadFileOrEmpty(dir + "/scheduler.addr");
  scheduler_address_ = scheduler_address_.substr(0, scheduler_address_.find_first_of("\r\n"));
  if (scheduler_address_.empty()) return false;
  for (int s = 0; s < spec_.servers; ++s) {
    nodes_.push_back({"server-" + std::to_string(s), -1, 0});
    if (!StartServer(s)) return false;
  }
  for (int w = 0; w < spec_.workers; ++w) {
    argv = NodeArgs("worker");
    for (const std::string& flag : {"--scheduler=" + scheduler_address_, "--rank=" + std::to_string(w),
                                    std::string("--program=train"), std::string("--"),
                                    "--job=" + spec_.job}) {
      argv.push_back(flag);
    }
    const std::string name = "worker-" + std::to_string(w);
    nodes_.push_back({name, testing::Spawn(argv, dir + "/" + name + ".log"), 0});
  }
  if (!testing::PollUntil(
          [&] { return fs::exists(dir + "/cluster.json") || !testing::ProcessAlive(sched); },
          seconds(120))) {
    return false;
  }
  nlohmann::json doc = nlohmann::json::parse(ReadFileOrEmpty(dir + "/cluster.json"), nullptr, false);
  if (doc.is_discarded() || !doc.contains("nodes")) return false;
  for (const nlohmann::json& entry : doc["nodes"]) {
    const std::string role = entry.value("role", "");
    const int id = entry.value("id", -1);
    const std::string name = role == "scheduler" ? role : role + "-" + std::to_string(id);
    for (ProcessNode& node : nodes_) {
      if (node.name == name) node.metrics_port = entry.value("metrics_port", 0);
    }
  }
  return std::all_of(nodes_.begin(), nodes_.end(),
                     [](const ProcessNode& n) { return n.metrics_port > 0; });
}

bool ProcessCluster::StartServer(int rank) {
  std::vector<std::string> argv = NodeArgs("server");
  argv.push_back("--scheduler=" + scheduler_address_);
  argv.push_back("--rank=" + std::to_string(rank));
  ProcessNode& node = server(rank);
  // Appends: a replacement's log follows its predecessor's.
  node.pid = testing::Spawn(argv, spec_.dir + "/" + node.name + ".log");
  node.metrics_port = 0;
  return node.pid > 0;
}

bool ProcessCluster::WaitAll(seconds timeout, bool any_exit_code) {
  bool ok = true;
  for (ProcessNode& node : nodes_) {
    if (node.pid <= 0) continue;
    std::optional<int> status = testing::WaitForExit(node.pid, timeout);
    if (!status || !WIFEXITED(*status) || (!any_exit_code && WEXITSTATUS(*status) != 0)) {
      std::cerr << node.name << " did not exit " << (any_exit_code ? "" : "0 ") << "(log: "
                << spec_.dir << "/" << node.name << ".log)\n";
      ok = false;
    }
    if (status) node.pid = -1;
  }
  return ok;
}

bool GenerateData(const std::string& tessera, const std::string& out, int rows) {
  const std::string log = out + ".gen.log";
  const pid_t gen = testing::Spawn(
      {tessera, "gen", "--out", out, "--rows", std::to_string(rows), "--seed", "7"}, log);
  std::optional<int> status = testing::WaitForExit(gen, seconds(300));
  if (!status || !WIFEXITED(*status) || WEXITSTATUS(*status) != 0) {
    std::cerr << "tessera gen failed:\n" << ReadFileOrEmpty(log);
    return false;
  }
  return true;
}

std::map<std::string, double> ScrapeMetrics(int port) {
  std::map<std::string, double> out;
  std::optional<testing::HttpResult> page = testing::HttpGet(port, "/metrics");
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

double Percentile(std::vector<double> v, double q) {
  if (v.empty()) return std::nan("");
  std::sort(v.begin(), v.end());
  const size_t rank = static_cast<size_t>(std::ceil(q * static_cast<double>(v.size())));
  return v[std::min(v.size() - 1, rank == 0 ? 0 : rank - 1)];
}

std::string DefaultTesseraBinary() {
  if (const char* bin = std::getenv("TESSERA_BIN"); bin != nullptr && *bin != '\0') return bin;
  std::error_code ec;
  const auto self = fs::read_symlink("/proc/self/exe", ec);
  if (ec) return "";
  return (self.parent_path().parent_path() / "tools" / "tessera").string();
}

}  // namespace tessera::bench
