// deploy/prometheus (alerting rules, their unit tests, scrape configs) and
// deploy/grafana/tessera.json against docs/metrics.md: every metric an alert
// or a dashboard panel reads is in the catalogue, so neither can silently
// rot when a metric is renamed; promtool (Debian package `prometheus`)
// checks and unit-tests the rules when it is installed.
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <yaml-cpp/yaml.h>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/deploy/monitoring_util.h"

namespace tessera {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

std::string Source(const std::string& relative) {
  return std::string(TESSERA_SOURCE_DIR) + "/" + relative;
}

std::string ReadSource(const std::string& relative) {
  std::ifstream in(Source(relative));
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::set<std::string> Catalogue() { return testing::DocumentedMetrics(ReadSource("docs/metrics.md")); }

// Names in `expr` that are neither documented nor Prometheus's own `up`.
std::vector<std::string> Undocumented(const std::string& expr) {
  static const std::set<std::string> documented = Catalogue();
  std::vector<std::string> missing;
  for (const std::string& name : testing::MetricNamesInExpr(expr)) {
    if (name != "up" && !testing::IsDocumented(documented, name)) missing.push_back(name);
  }
  return missing;
}

TEST(MetricNamesInExprTest, SkipsFunctionsLabelsRangesAndGroupings) {
  EXPECT_EQ(testing::MetricNamesInExpr(
                R"(histogram_quantile(0.99, sum by (le, op) (rate(a_seconds_bucket{job="x", op=~"p.*"}[5m]))) > 1e3)"),
            std::set<std::string>({"a_seconds_bucket"}));
  EXPECT_EQ(testing::MetricNamesInExpr(
                "time() - max(b_timestamp_seconds) / on (instance) group_left c_bytes offset 5m"),
            std::set<std::string>({"b_timestamp_seconds", "c_bytes"}));
  EXPECT_EQ(testing::MetricNamesInExpr(R"(absent(up{job="tessera", role="scheduler"} == 1))"),
            std::set<std::string>({"up"}));
}

TEST(MetricsCatalogueTest, ListsEveryRoleAndSeriesOnce) {
  const std::set<std::string> documented = Catalogue();
  EXPECT_GT(documented.size(), 60u);
  for (const char* name : {"tessera_scheduler_alive_nodes", "tessera_server_table_rows",
                           "tessera_worker_window_auc", "tessera_serving_model_version",
                           "process_resident_memory_bytes"}) {
    EXPECT_TRUE(documented.count(name)) << name;
  }
  // Prometheus naming: counters (documented as such) end in _total, other
  // types do not.
  const std::string md = ReadSource("docs/metrics.md");
  std::istringstream in(md);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("| `", 0) != 0) continue;
    const std::string name = line.substr(3, line.find('`', 3) - 3);
    const bool counter = line.find("| counter |") != std::string::npos;
    const bool total = name.size() > 6 && name.compare(name.size() - 6, 6, "_total") == 0;
    EXPECT_EQ(counter, total) << line;
  }
}

TEST(AlertRulesTest, EveryExpressionReadsDocumentedMetrics) {
  YAML::Node rules = YAML::LoadFile(Source("deploy/prometheus/alerts.yml"));
  int alerts = 0;
  for (const YAML::Node& group : rules["groups"]) {
    for (const YAML::Node& rule : group["rules"]) {
      ASSERT_TRUE(rule["alert"]) << "only alerts here";
      EXPECT_THAT(Undocumented(rule["expr"].as<std::string>()), IsEmpty())
          << rule["alert"].as<std::string>();
      EXPECT_TRUE(rule["labels"]["severity"]) << rule["alert"].as<std::string>();
      EXPECT_TRUE(rule["annotations"]["summary"]) << rule["alert"].as<std::string>();
      ++alerts;
    }
  }
  EXPECT_GE(alerts, 10);
}

TEST(GrafanaDashboardTest, EveryPanelQueryReadsDocumentedMetrics) {
  const nlohmann::json dash = nlohmann::json::parse(ReadSource("deploy/grafana/tessera.json"));
  int queries = 0;
  std::set<std::string> rows;
  for (const nlohmann::json& panel : dash["panels"]) {
    if (panel["type"] == "row") rows.insert(panel["title"].get<std::string>());
    if (!panel.contains("targets")) continue;
    for (const nlohmann::json& target : panel["targets"]) {
      const std::string expr = target["expr"].get<std::string>();
      EXPECT_THAT(Undocumented(expr), IsEmpty()) << panel["title"] << ": " << expr;
      ++queries;
    }
  }
  EXPECT_GE(queries, 30);
  EXPECT_EQ(rows, std::set<std::string>({"Training", "Servers", "Serving"}));
}

TEST(ScrapeConfigTest, BothExamplesLabelTargetsAsTheRulesExpect) {
  YAML::Node local = YAML::LoadFile(Source("deploy/prometheus/prometheus.yml"));
  ASSERT_EQ(local["scrape_configs"].size(), 1u);
  EXPECT_EQ(local["scrape_configs"][0]["job_name"].as<std::string>(), "tessera");
  std::set<std::string> roles;
  for (const YAML::Node& group : local["scrape_configs"][0]["static_configs"]) {
    roles.insert(group["labels"]["role"].as<std::string>());
  }
  EXPECT_EQ(roles, std::set<std::string>({"scheduler", "server", "worker", "serving"}));

  YAML::Node k8s = YAML::LoadFile(Source("deploy/prometheus/prometheus-kubernetes.yml"));
  const YAML::Node job = k8s["scrape_configs"][0];
  EXPECT_EQ(job["job_name"].as<std::string>(), "tessera");
  EXPECT_EQ(job["kubernetes_sd_configs"][0]["role"].as<std::string>(), "pod");
  std::vector<std::string> targets;
  for (const YAML::Node& r : job["relabel_configs"]) {
    if (r["target_label"]) targets.push_back(r["target_label"].as<std::string>());
  }
  EXPECT_THAT(targets, ElementsAre("__metrics_path__", "__address__", "role", "namespace", "pod"));
}

class PromtoolTest : public ::testing::Test {
 protected:
  void SetUp() override {
    promtool_ = testing::FindInPath("promtool");
    if (promtool_.empty()) {
      GTEST_SKIP() << "promtool not found in PATH: install the Debian package `prometheus` "
                      "(tools/install_deps.sh does)";
    }
  }
  testing::CommandResult Run(const std::string& args) {
    return testing::RunCommand("cd '" + Source("deploy/prometheus") + "' && '" + promtool_ + "' " +
                               args);
  }
  std::string promtool_;
};

TEST_F(PromtoolTest, CheckRulesAcceptsAlerts) {
  testing::CommandResult r = Run("check rules alerts.yml");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, ::testing::HasSubstr("SUCCESS"));
}

TEST_F(PromtoolTest, AlertUnitTestsPass) {
  testing::CommandResult r = Run("test rules alerts_test.yml");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, ::testing::HasSubstr("SUCCESS"));
}

TEST_F(PromtoolTest, CheckConfigAcceptsTheStaticScrapeConfig) {
  testing::CommandResult r = Run("check config prometheus.yml");
  EXPECT_EQ(r.exit_code, 0) << r.output;
}

TEST_F(PromtoolTest, CheckConfigAcceptsTheKubernetesScrapeConfig) {
  testing::CommandResult r = Run("check config prometheus-kubernetes.yml");
  if (r.output.find("field kubernetes_sd_configs not found") != std::string::npos) {
    GTEST_SKIP() << "this promtool is built without Kubernetes service discovery (Debian's is)";
  }
  EXPECT_EQ(r.exit_code, 0) << r.output;
}

}  // namespace
}  // namespace tessera
