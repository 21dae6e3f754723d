// A real Prometheus server (Debian package `prometheus`) scraping a local
// Tessera cluster run as processes (a streaming `tessera train`: scheduler,
// 2 servers, 2 workers) and a `tessera serve` following its published
// versions, with deploy/prometheus/alerts.yml loaded: every target is up,
// the key series of docs/metrics.md are queryable through Prometheus's
// HTTP API, every rule evaluates, and every endpoint's page passes
// `promtool check metrics` and lists only catalogued families. Skipped when
// prometheus or promtool is not installed.
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/deploy/monitoring_util.h"
#include "tests/e2e/process_util.h"
#include "tests/testing/temp_dir.h"
#include "tools/cli/cluster_file.h"
#include <httplib.h>

namespace tessera {
namespace {

namespace fs = std::filesystem;
using ::testing::IsEmpty;

constexpr int kBadLines = 3;

// A port free now (bound to 0, then released) for a program that cannot
// report the port it bound.
int FreePort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  int port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  ::close(fd);
  return port;
}

std::string UrlEncode(const std::string& s) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

struct Target {
  std::string role;
  int port = 0;
};

class PrometheusE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(testing::TesseraBinary().empty()) << "TESSERA_BIN unset";
    prometheus_ = testing::FindInPath("prometheus");
    promtool_ = testing::FindInPath("promtool");
    if (prometheus_.empty() || promtool_.empty()) {
      GTEST_SKIP() << "prometheus/promtool not found in PATH: install the Debian package "
                      "`prometheus` (tools/install_deps.sh does) to run this test";
    }
    ::unsetenv("TESSERA_CLUSTER_TOKEN");
    ::unsetenv("TESSERA_SCHEDULER");
  }

  void TearDown() override {
    // Children die with the test process anyway; stop them in order.
    for (pid_t pid : {prometheus_pid_, serve_pid_, train_pid_}) {
      if (pid <= 0) continue;
      ::kill(pid, SIGTERM);
      ::kill(pid, SIGTERM);  // a second signal stops a draining job at once
      if (!testing::WaitForExit(pid, std::chrono::seconds(20))) {
        ::kill(pid, SIGKILL);
        testing::WaitForExit(pid, std::chrono::seconds(5));
      }
    }
  }

  // A Prometheus instant query's result vector (empty on any error).
  nlohmann::json Query(const std::string& promql) {
    std::optional<testing::HttpResult> r =
        testing::HttpGet(prometheus_port_, "/api/v1/query?query=" + UrlEncode(promql));
    if (!r || r->status != 200) return nlohmann::json::array();
    nlohmann::json j = nlohmann::json::parse(r->body, nullptr, false);
    if (!j.is_object() || j.value("status", "") != "success") return nlohmann::json::array();
    return j["data"]["result"];
  }

  // The single value of a query returning one sample (NaN if not one).
  double Scalar(const std::string& promql) {
    nlohmann::json result = Query(promql);
    if (result.size() != 1) return std::nan("");
    return std::stod(result[0]["value"][1].get<std::string>());
  }

  void StartCluster();
  void StartServe();
  void StartPrometheus();

  testing::TempDir dir_;
  std::string prometheus_, promtool_;
  pid_t train_pid_ = -1, serve_pid_ = -1, prometheus_pid_ = -1;
  int serve_port_ = 0, prometheus_port_ = 0;
  std::vector<Target> targets_;
  size_t good_lines_ = 0;  // of the training data
};

void PrometheusE2eTest::StartCluster() {
  const pid_t gen = testing::Spawn({testing::TesseraBinary(), "gen", "--out", dir_.File("data"),
                                    "--rows", "6000", "--users", "300", "--items", "500", "--seed",
                                    "11"},
                                   dir_.File("gen.log"));
  std::optional<int> status = testing::WaitForExit(gen, std::chrono::seconds(60));
  ASSERT_TRUE(status && WIFEXITED(*status) && WEXITSTATUS(*status) == 0)
      << testing::ReadFileOrEmpty(dir_.File("gen.log"));
  // The training data and kBadLines malformed lines, as one followed file:
  // the job keeps running (a stream) until it is stopped.
  fs::create_directories(dir_.File("incoming"));
  {
    std::ofstream out(dir_.File("incoming/.part-000.tsv"));
    const std::string data = testing::ReadFileOrEmpty(dir_.File("data/train.tsv"));
    good_lines_ = static_cast<size_t>(std::count(data.begin(), data.end(), '\n'));
    ASSERT_GT(good_lines_, 5000u);
    out << data;
    for (int i = 0; i < kBadLines; ++i) out << "2\tnot a label\n";
  }
  fs::rename(dir_.File("incoming/.part-000.tsv"), dir_.File("incoming/part-000.tsv"));
  std::ofstream(dir_.File("job.yaml"))
      << "data: {schema: data/schema.yaml, train: incoming, follow: true}\n"
         "model: {type: deepfm, embedding_dim: 8, hidden: [16]}\n"
         "train: {batch_size: 256, max_batch_delay_ms: 50, progress_every_s: 0.2}\n"
         "cluster: {servers: 2, workers: 2}\n"
         "publish: {model_dir: pub, interval_s: 0.5, full_every: 4, keep: 4}\n"
         "output_dir: out\n";
  train_pid_ = testing::Spawn({testing::TesseraBinary(), "train", dir_.File("job.yaml")},
                              dir_.File("train.log"));
  ASSERT_GT(train_pid_, 0);
  // cluster.json lists the scheduler and the view's nodes once all run.
  StatusOr<std::vector<cli::ClusterNodeRecord>> nodes;
  ASSERT_TRUE(testing::PollUntil(
      [&] {
        nodes = cli::ParseClusterJson(testing::ReadFileOrEmpty(dir_.File("out/cluster.json")));
        return (nodes.ok() && nodes->size() == 5) || !testing::ProcessAlive(train_pid_);
      },
      std::chrono::seconds(30)))
      << testing::ReadFileOrEmpty(dir_.File("train.log"));
  ASSERT_TRUE(nodes.ok() && nodes->size() == 5) << testing::ReadFileOrEmpty(dir_.File("train.log"));
  for (const cli::ClusterNodeRecord& n : *nodes) {
    ASSERT_GT(n.metrics_port, 0);
    targets_.push_back({std::string(RoleName(n.role)), n.metrics_port});
  }
}

void PrometheusE2eTest::StartServe() {
  // A version to serve first.
  ASSERT_TRUE(testing::PollUntil(
      [&] {
        std::error_code ec;
        for (const auto& e : fs::directory_iterator(dir_.File("pub"), ec)) {
          if (fs::exists(e.path() / "manifest.json")) return true;
        }
        return false;
      },
      std::chrono::seconds(30)))
      << testing::ReadFileOrEmpty(dir_.File("train.log"));
  serve_pid_ = testing::StartServe(
      testing::TesseraBinary(), {"--model-dir", dir_.File("pub"), "--name", "ctr", "--poll-ms", "100"},
      dir_.File("serve.log"), &serve_port_);
  ASSERT_GT(serve_pid_, 0) << testing::ReadFileOrEmpty(dir_.File("serve.log"));
  targets_.push_back({"serving", serve_port_});
  // One scored request and one refused, so the request series exist.
  httplib::Client client("127.0.0.1", serve_port_);
  auto ok = client.Post("/v1/models/ctr:predict",
                        R"({"instances": [{"user_id": "u3", "item_id": "i7", "price": 20.0}]})",
                        "application/json");
  ASSERT_TRUE(ok && ok->status == 200) << (ok ? ok->body : "no reply");
  auto bad = client.Post("/v1/models/ctr:predict", R"({"instances": [{"price": "x"}]})",
                         "application/json");
  ASSERT_TRUE(bad && bad->status == 400) << (bad ? bad->body : "no reply");
}

void PrometheusE2eTest::StartPrometheus() {
  std::ofstream config(dir_.File("prometheus.yml"));
  config << "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
         << "rule_files: ['" << TESSERA_SOURCE_DIR << "/deploy/prometheus/alerts.yml']\n"
         << "scrape_configs:\n  - job_name: tessera\n    static_configs:\n";
  for (const Target& t : targets_) {
    config << "      - targets: ['127.0.0.1:" << t.port << "']\n        labels: {role: " << t.role
           << "}\n";
  }
  config.close();
  testing::CommandResult check =
      testing::RunCommand("'" + promtool_ + "' check config '" + dir_.File("prometheus.yml") + "'");
  ASSERT_EQ(check.exit_code, 0) << check.output;
  // The port is picked free, then bound by Prometheus: retry if another
  // process took it in between.
  for (int attempt = 0; attempt < 3; ++attempt) {
    prometheus_port_ = FreePort();
    ASSERT_GT(prometheus_port_, 0);
    const std::string log = dir_.File("prometheus-" + std::to_string(attempt) + ".log");
    prometheus_pid_ = testing::Spawn(
        {prometheus_, "--config.file=" + dir_.File("prometheus.yml"),
         "--storage.tsdb.path=" + dir_.File("tsdb"),
         "--web.listen-address=127.0.0.1:" + std::to_string(prometheus_port_),
         "--log.level=warn"},
        log);
    const bool ready = testing::PollUntil(
        [&] {
          std::optional<testing::HttpResult> r = testing::HttpGet(prometheus_port_, "/-/ready");
          return (r && r->status == 200) || !testing::ProcessAlive(prometheus_pid_);
        },
        std::chrono::seconds(20));
    if (ready && testing::ProcessAlive(prometheus_pid_)) return;
    ::kill(prometheus_pid_, SIGKILL);
    testing::WaitForExit(prometheus_pid_, std::chrono::seconds(5));
    prometheus_pid_ = -1;
    ADD_FAILURE() << "prometheus did not start: " << testing::ReadFileOrEmpty(log);
  }
  FAIL() << "prometheus never became ready";
}

TEST_F(PrometheusE2eTest, ScrapesEveryNodeAndServingWithTheKeySeriesAndRules) {
  ASSERT_NO_FATAL_FAILURE(StartCluster());
  ASSERT_NO_FATAL_FAILURE(StartServe());
  ASSERT_EQ(targets_.size(), 6u);

  // Every page passes promtool's lint and holds only catalogued families.
  const std::set<std::string> documented = testing::DocumentedMetrics(
      testing::ReadFileOrEmpty(std::string(TESSERA_SOURCE_DIR) + "/docs/metrics.md"));
  for (const Target& t : targets_) {
    SCOPED_TRACE(t.role + " on port " + std::to_string(t.port));
    std::optional<testing::HttpResult> page = testing::HttpGet(t.port, "/metrics");
    ASSERT_TRUE(page && page->status == 200);
    const std::string file = dir_.File("metrics-" + std::to_string(t.port) + ".txt");
    std::ofstream(file) << page->body;
    testing::CommandResult lint =
        testing::RunCommand("'" + promtool_ + "' check metrics < '" + file + "'");
    EXPECT_EQ(lint.exit_code, 0) << lint.output;
    EXPECT_EQ(lint.output, "");
    std::vector<std::string> undocumented;
    for (const std::string& family : testing::FamiliesInExposition(page->body)) {
      if (!documented.count(family)) undocumented.push_back(family);
    }
    EXPECT_THAT(undocumented, IsEmpty()) << "add them to docs/metrics.md";
  }

  ASSERT_NO_FATAL_FAILURE(StartPrometheus());
  // Every target up, as Prometheus itself reports it.
  std::string targets_body;
  const bool all_up = testing::PollUntil(
      [&] {
        std::optional<testing::HttpResult> r = testing::HttpGet(prometheus_port_, "/api/v1/targets");
        if (!r || r->status != 200) return false;
        targets_body = r->body;
        nlohmann::json j = nlohmann::json::parse(r->body, nullptr, false);
        if (!j.is_object()) return false;
        const nlohmann::json& active = j["data"]["activeTargets"];
        if (active.size() != targets_.size()) return false;
        for (const nlohmann::json& t : active) {
          if (t.value("health", "") != "up") return false;
        }
        return true;
      },
      std::chrono::seconds(30));
  ASSERT_TRUE(all_up) << targets_body;
  EXPECT_EQ(Scalar(R"(count(up{job="tessera"} == 1))"), 6);
  for (const char* role : {"scheduler", "server", "worker", "serving"}) {
    EXPECT_FALSE(Query(std::string(R"(up{job="tessera", role=")") + role + "\"}").empty()) << role;
  }

  // The key series, queried through Prometheus (waiting for training and
  // publishing to have produced them).
  const std::vector<std::pair<std::string, double>> present = {
      {"count(tessera_scheduler_alive_nodes)", 1},
      {"count(tessera_scheduler_published_version > 0)", 1},
      {"count(tessera_scheduler_last_publish_timestamp_seconds)", 1},
      {"count(count by (instance) (tessera_server_table_rows))", 2},
      {"count(count by (instance) (tessera_server_table_bytes))", 2},
      {"count(count by (instance) (tessera_server_request_duration_seconds_bucket{op=\"pull\"}))", 2},
      {"count(sum by (instance) (tessera_server_pulled_keys_total) > 0)", 2},
      {"count(tessera_worker_examples_total)", 2},
      // Every good line trained (the whole file may be one worker's chunk).
      {"sum(tessera_worker_examples_total)", static_cast<double>(good_lines_)},
      {"count(tessera_worker_window_auc)", 2},
      {"count(tessera_worker_window_logloss)", 2},
      {"count(tessera_worker_staleness_steps)", 2},
      {"count(tessera_worker_prefetched_batches)", 2},
      {"count(count by (instance) (tessera_worker_kv_duration_seconds_bucket))", 2},
      {"count(tessera_serving_model_version > 0)", 1},
      {"count(tessera_serving_version_lag_seconds)", 1},
      {"count(tessera_serving_requests_total{code=\"200\"})", 1},
      {"count(tessera_serving_bad_requests_total)", 1},
      {"count(process_resident_memory_bytes{job=\"tessera\"} > 0)", 6},
      // Every malformed line was counted (workers' live counters).
      {"sum(tessera_worker_bad_lines_total)", kBadLines},
  };
  for (const auto& [promql, expected] : present) {
    double got = std::nan("");
    EXPECT_TRUE(testing::PollUntil(
        [&] {
          got = Scalar(promql);
          return got == expected;
        },
        std::chrono::seconds(20)))
        << promql << " = " << got << ", expected " << expected;
  }

  // alerts.yml loaded and every rule evaluated without error on real series.
  std::string rules_body;
  EXPECT_TRUE(testing::PollUntil(
      [&] {
        std::optional<testing::HttpResult> r = testing::HttpGet(prometheus_port_, "/api/v1/rules");
        if (!r || r->status != 200) return false;
        rules_body = r->body;
        nlohmann::json j = nlohmann::json::parse(r->body, nullptr, false);
        if (!j.is_object()) return false;
        int rules = 0;
        for (const nlohmann::json& g : j["data"]["groups"]) {
          for (const nlohmann::json& rule : g["rules"]) {
            if (rule.value("health", "") != "ok") return false;
            ++rules;
          }
        }
        return rules >= 10;
      },
      std::chrono::seconds(20)))
      << rules_body;
  // Nothing is wrong with this cluster: no alert fires (pending ones, with
  // a `for`, would need minutes anyway).
  EXPECT_TRUE(Query("ALERTS{alertstate=\"firing\"}").empty()) << Query("ALERTS").dump();
}

}  // namespace
}  // namespace tessera
