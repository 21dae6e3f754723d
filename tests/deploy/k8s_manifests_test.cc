// deploy/k8s without kubectl or kustomize: every manifest parses, the base
// and each overlay build (tests/deploy/kustomize_lite.h) and pass the checks
// of tests/deploy/manifest_checks.h against the real `tessera --help` of
// each subcommand. Broken copies of the manifests show that the checks
// catch what they claim to. Where Node.js and the npm package
// kubernetes-models are installed, every built object is also validated
// against the Kubernetes API schemas (skipped otherwise).
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/deploy/kustomize_lite.h"
#include "tests/deploy/manifest_checks.h"
#include "tests/testing/temp_dir.h"

namespace tessera::deploy {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

std::string SourceDir() {
  const char* dir = std::getenv("TESSERA_SOURCE_DIR");
  return dir == nullptr ? "" : dir;
}

// Output of a shell command (stdout and stderr), and its exit code.
std::string RunShell(const std::string& command, int* code) {
  std::string out;
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return out;
  char buffer[4096];
  for (size_t n; (n = fread(buffer, 1, sizeof(buffer), pipe)) > 0;) out.append(buffer, n);
  const int status = ::pclose(pipe);
  *code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return out;
}

// `tessera SUB --help`, cached per subcommand.
std::set<std::string> HelpFlags(const std::string& sub) {
  static std::map<std::string, std::set<std::string>> cache;
  auto it = cache.find(sub);
  if (it != cache.end()) return it->second;
  int code = -1;
  const char* bin = std::getenv("TESSERA_BIN");
  std::string help = RunShell(std::string(bin == nullptr ? "tessera" : bin) + " " + sub +
                                  " --help",
                              &code);
  std::set<std::string> flags = code == 0 ? ParseHelpFlags(help) : std::set<std::string>{};
  cache[sub] = flags;
  return flags;
}

std::vector<YAML::Node> MustBuild(const std::string& dir) {
  StatusOr<std::vector<YAML::Node>> built = Build(dir);
  EXPECT_TRUE(built.ok()) << built.status();
  return built.ok() ? *built : std::vector<YAML::Node>{};
}

const YAML::Node* FindObject(const std::vector<YAML::Node>& objects, const std::string& id) {
  for (const YAML::Node& object : objects) {
    if (ObjectId(object) == id) return &object;
  }
  return nullptr;
}

// JSON of a YAML node: plain scalars that read as numbers, booleans or null
// keep their type; quoted scalars ("9100") stay strings.
std::string ToJson(const YAML::Node& node) {
  if (node.IsMap() || node.IsSequence()) {
    std::string out = node.IsMap() ? "{" : "[";
    bool first = true;
    for (const auto& entry : node) {
      out += first ? "" : ",";
      first = false;
      out += node.IsMap() ? ToJson(YAML::Node(entry.first.Scalar())) + ":" + ToJson(entry.second)
                          : ToJson(entry);
    }
    return out + (node.IsMap() ? "}" : "]");
  }
  if (!node.IsScalar()) return "null";
  const std::string& v = node.Scalar();
  static const std::regex kNumber(R"(-?[0-9]+(\.[0-9]+)?)");
  if (node.Tag() == "?" && (std::regex_match(v, kNumber) || v == "true" || v == "false" ||
                            v == "null")) {
    // YAML 1.1 octal (defaultMode: 0400) is no JSON number.
    return v.size() > 1 && v[0] == '0' && v.find('.') == std::string::npos
               ? std::to_string(std::stoi(v, nullptr, 8))
               : v;
  }
  std::string out = "\"";
  for (char c : v) {
    if (c == '"' || c == '\\') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out + "\"";
}

class K8sManifestsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(SourceDir().empty()) << "TESSERA_SOURCE_DIR unset";
    ASSERT_NE(std::getenv("TESSERA_BIN"), nullptr) << "TESSERA_BIN unset";
  }

  std::string K8s(const std::string& sub) const { return SourceDir() + "/deploy/k8s/" + sub; }

  // A copy of deploy/k8s in a temp dir, to break.
  std::string Copy() {
    fs::copy(K8s(""), dir_.File("k8s"), fs::copy_options::recursive);
    return dir_.File("k8s");
  }

  static void Replace(const std::string& path, const std::string& from, const std::string& to) {
    std::ifstream in(path);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const size_t pos = text.find(from);
    ASSERT_NE(pos, std::string::npos) << from << " not in " << path;
    text.replace(pos, from.size(), to);
    std::ofstream(path) << text;
  }

  std::vector<std::string> CheckBuilt(const std::string& dir) {
    return CheckManifests(MustBuild(dir), /*built=*/true, HelpFlags);
  }

  testing::TempDir dir_;
};

TEST_F(K8sManifestsTest, EveryManifestParses) {
  int files = 0;
  for (const auto& entry : fs::recursive_directory_iterator(K8s(""))) {
    if (entry.path().extension() != ".yaml") continue;
    StatusOr<std::vector<YAML::Node>> docs = LoadDocuments(entry.path().string());
    ASSERT_TRUE(docs.ok()) << docs.status();
    EXPECT_FALSE(docs->empty()) << entry.path();
    ++files;
  }
  EXPECT_GE(files, 12);
}

TEST_F(K8sManifestsTest, BaseObjectsPassUnbuilt) {
  std::vector<YAML::Node> objects;
  for (const char* file : {"namespace.yaml", "job-configmap.yaml", "storage.yaml", "scheduler.yaml",
                           "servers.yaml", "workers.yaml", "serving.yaml", "podmonitor.yaml"}) {
    StatusOr<std::vector<YAML::Node>> docs = LoadDocuments(K8s("base/") + file);
    ASSERT_TRUE(docs.ok()) << docs.status();
    objects.insert(objects.end(), docs->begin(), docs->end());
  }
  EXPECT_THAT(CheckManifests(objects, /*built=*/false, HelpFlags), IsEmpty());
}

TEST_F(K8sManifestsTest, BaseAndOverlaysBuildAndPass) {
  for (const char* dir : {"base", "overlays/small", "overlays/large"}) {
    SCOPED_TRACE(dir);
    std::vector<YAML::Node> objects = MustBuild(K8s(dir));
    std::set<std::string> kinds;
    for (const YAML::Node& object : objects) kinds.insert(object["kind"].Scalar());
    EXPECT_EQ(kinds, (std::set<std::string>{"Namespace", "ConfigMap", "PersistentVolumeClaim",
                                            "Service", "Deployment", "StatefulSet", "Job",
                                            "HorizontalPodAutoscaler", "PodMonitor"}));
    EXPECT_THAT(CheckManifests(objects, /*built=*/true, HelpFlags), IsEmpty());
  }
}

TEST_F(K8sManifestsTest, OverlaysPatchWhatTheyClaim) {
  std::vector<YAML::Node> large = MustBuild(K8s("overlays/large"));
  const YAML::Node* servers = FindObject(large, "StatefulSet/tessera-server");
  const YAML::Node* workers = FindObject(large, "Job/tessera-worker");
  ASSERT_NE(servers, nullptr);
  ASSERT_NE(workers, nullptr);
  EXPECT_EQ((*servers)["spec"]["replicas"].as<int>(), 8);
  EXPECT_EQ((*workers)["spec"]["parallelism"].as<int>(), 16);
  const YAML::Node server = (*servers)["spec"]["template"]["spec"]["containers"][0];
  EXPECT_EQ(server["resources"]["limits"]["memory"].Scalar(), "32Gi");
  EXPECT_EQ(server["image"].Scalar(), "registry.example.com/tessera:0.1.0");
  // The merge kept the base's container fields next to the patched ones.
  EXPECT_EQ(server["args"][0].Scalar(), "server");
  EXPECT_EQ(server["env"].size(), 3u);
  EXPECT_EQ((*servers)["metadata"]["namespace"].Scalar(), "tessera");

  std::vector<YAML::Node> small = MustBuild(K8s("overlays/small"));
  const YAML::Node* serving = FindObject(small, "Deployment/tessera-serving");
  ASSERT_NE(serving, nullptr);
  EXPECT_EQ((*serving)["spec"]["replicas"].as<int>(), 1);
  EXPECT_THAT((*FindObject(small, "ConfigMap/tessera-job"))["data"]["job.yaml"].Scalar(),
              HasSubstr("embedding_dim: 8"));
}

TEST_F(K8sManifestsTest, ChecksCatchBrokenManifests) {
  const std::string k8s = Copy();
  // An unknown flag, a probe on the wrong port, a Job of the wrong size.
  Replace(k8s + "/base/scheduler.yaml", "--metrics-port=9100", "--metrics-port=9100\n            - --no-such-flag=1");
  Replace(k8s + "/base/servers.yaml", "path: /readyz\n              port: 9100",
          "path: /readyz\n              port: 9101");
  Replace(k8s + "/overlays/large/cluster.yaml", "completions: 16", "completions: 15");
  // No publish: in a job whose scheduler runs with --resume.
  Replace(k8s + "/overlays/large/job-config.yaml", "    publish:", "    # publish:");
  // The worker's job file outside the ConfigMap's mount.
  Replace(k8s + "/base/workers.yaml", "mountPath: /etc/tessera/job\n",
          "mountPath: /etc/tessera/jobs\n");
  std::vector<std::string> base = CheckBuilt(k8s + "/base");
  EXPECT_THAT(base, ::testing::Contains(HasSubstr("has no flag --no-such-flag")));
  EXPECT_THAT(base, ::testing::Contains(HasSubstr("StatefulSet/tessera-server: readinessProbe")));
  EXPECT_THAT(base, ::testing::Contains(HasSubstr(
                        "Job/tessera-worker: --job '/etc/tessera/job/job.yaml' is not in")));
  std::vector<std::string> large = CheckBuilt(k8s + "/overlays/large");
  EXPECT_THAT(large, ::testing::Contains(HasSubstr("cluster.workers 16")));
  EXPECT_THAT(large, ::testing::Contains(HasSubstr("completions must equal parallelism")));
  EXPECT_THAT(large, ::testing::Contains(HasSubstr("--resume needs publish.model_dir")));
}

TEST_F(K8sManifestsTest, PodMonitorMustSetTheLabelsTheAlertsSelect) {
  // The base passes (BaseAndOverlaysBuildAndPass); break each label once.
  const std::string k8s = Copy();
  const std::string pm = k8s + "/base/podmonitor.yaml";
  // Endpoint `metrics`: job left to the operator (<namespace>/tessera).
  Replace(pm, "        - targetLabel: job\n          replacement: tessera\n", "");
  // Endpoint `http`: role from the wrong pod label.
  const std::string role_then_job = "]\n          targetLabel: role\n        - targetLabel: job";
  Replace(pm, "_app_kubernetes_io_component" + role_then_job,
          "_app_kubernetes_io_name" + role_then_job);
  // A scraped pod whose component is no role of the alerts.
  Replace(k8s + "/base/workers.yaml", "app.kubernetes.io/component: worker\n      annotations:",
          "app.kubernetes.io/component: trainer\n      annotations:");
  std::vector<std::string> base = CheckBuilt(k8s + "/base");
  using ::testing::Contains;
  EXPECT_THAT(base, Contains(HasSubstr("PodMonitor/tessera: endpoint metrics does not relabel "
                                       "job to \"tessera\"")));
  EXPECT_THAT(base, Contains(HasSubstr("PodMonitor/tessera: endpoint http does not set role")));
  EXPECT_THAT(base, Contains(HasSubstr("PodMonitor/tessera: scrapes Job/tessera-worker")));
  // Each endpoint's other label still passes: one problem per break.
  EXPECT_THAT(base, ::testing::Not(Contains(HasSubstr("endpoint metrics does not set role"))));
  EXPECT_THAT(base, ::testing::Not(Contains(HasSubstr("endpoint http does not relabel job"))));

  // Without relabelings at all, both endpoints miss both labels.
  const std::string bare = dir_.File("bare");
  fs::copy(K8s(""), bare, fs::copy_options::recursive);
  std::ofstream(bare + "/base/podmonitor.yaml")
      << "apiVersion: monitoring.coreos.com/v1\nkind: PodMonitor\nmetadata:\n  name: tessera\n"
         "spec:\n  selector:\n    matchLabels:\n      app.kubernetes.io/part-of: tessera\n"
         "  podMetricsEndpoints:\n    - port: metrics\n      path: /metrics\n"
         "    - port: http\n      path: /metrics\n";
  std::vector<std::string> problems = CheckBuilt(bare + "/base");
  EXPECT_EQ(std::count_if(problems.begin(), problems.end(),
                          [](const std::string& p) {
                            return p.rfind("PodMonitor/tessera: endpoint", 0) == 0;
                          }),
            4)
      << ::testing::PrintToString(problems);
}

TEST_F(K8sManifestsTest, BuildRefusesPatchesWithoutTargetAndUnknownKeys) {
  const std::string k8s = Copy();
  Replace(k8s + "/overlays/small/resources.yaml", "name: tessera-server", "name: tessera-servers");
  EXPECT_THAT(std::string(Build(k8s + "/overlays/small").status().message()),
              HasSubstr("no resource StatefulSet/tessera-servers to patch"));
  Replace(k8s + "/overlays/large/kustomization.yaml", "patches:", "namePrefix: x-\npatches:");
  EXPECT_THAT(std::string(Build(k8s + "/overlays/large").status().message()),
              HasSubstr("namePrefix"));
}

TEST_F(K8sManifestsTest, StrategicMergeMergesNamedListsAndReplacesOthers) {
  YAML::Node target = YAML::Load(
      "spec: {containers: [{name: a, image: x, env: [{name: E, value: '1'}]}], "
      "accessModes: [ReadWriteOnce]}");
  StrategicMerge(target, YAML::Load("spec: {containers: [{name: a, env: [{name: F, value: '2'}]}, "
                                    "{name: b, image: y}], accessModes: [ReadWriteMany]}"));
  EXPECT_EQ(target["spec"]["containers"].size(), 2u);
  EXPECT_EQ(target["spec"]["containers"][0]["image"].Scalar(), "x");
  EXPECT_EQ(target["spec"]["containers"][0]["env"].size(), 2u);
  EXPECT_EQ(target["spec"]["accessModes"].size(), 1u);
  EXPECT_EQ(target["spec"]["accessModes"][0].Scalar(), "ReadWriteMany");
}

// Optional: the Kubernetes API schemas, where kubernetes-models is installed.
TEST_F(K8sManifestsTest, OverlaysValidateAgainstKubernetesModelsWherePresent) {
  int code = -1;
  RunShell("node -e \"require('kubernetes-models')\"", &code);
  if (code != 0) GTEST_SKIP() << "node or the npm package kubernetes-models is not installed";
  for (const char* dir : {"overlays/small", "overlays/large"}) {
    for (const YAML::Node& object : MustBuild(K8s(dir))) {
      const std::string api = object["apiVersion"].Scalar();
      if (api.find("monitoring.coreos.com") != std::string::npos) continue;  // a CRD
      const std::string file = dir_.File("object.json");
      std::ofstream(file) << ToJson(object);
      // kubernetes-models/<apiVersion> exports the kinds: apps/v1, v1, ...
      std::string out = RunShell("node -e \"const m=require('kubernetes-models/" + api +
                                     "');new m['" + object["kind"].Scalar() + "'](require('" +
                                     file + "')).validate()\"",
                                 &code);
      EXPECT_EQ(code, 0) << dir << " " << ObjectId(object) << ": " << out;
    }
  }
}

}  // namespace
}  // namespace tessera::deploy
