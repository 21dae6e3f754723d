#include "tests/deploy/manifest_checks.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>

#include "models/job_config.h"
#include "tests/deploy/kustomize_lite.h"
#include "tests/testing/temp_dir.h"

namespace tessera::deploy {
namespace {

std::string Scalar(const YAML::Node& node) {
  return node && node.IsScalar() ? node.Scalar() : std::string();
}

int Int(const YAML::Node& node, int otherwise = -1) {
  try {
    return node && node.IsScalar() ? node.as<int>() : otherwise;
  } catch (const YAML::Exception&) {
    return otherwise;
  }
}

const std::set<std::string> kWorkloads = {"Deployment", "StatefulSet", "Job"};

// What deploy/prometheus/alerts.yml and the dashboard select on: every
// target under job="tessera", with role = the pod's component label.
constexpr char kAlertsJob[] = "tessera";
constexpr char kComponentLabel[] = "app.kubernetes.io/component";
constexpr char kComponentMeta[] = "__meta_kubernetes_pod_label_app_kubernetes_io_component";
const std::set<std::string> kRoles = {"scheduler", "server", "worker", "serving"};

// Whether a PodMetricsEndpoint relabeling sets `target` to `replacement`
// ("$1": the first source label's value) from `source` (empty: none needed).
bool SetsLabel(const YAML::Node& relabelings, const std::string& target,
               const std::string& source, const std::string& replacement) {
  for (const YAML::Node& r : relabelings) {
    const std::string action = Scalar(r["action"]);
    const std::string regex = Scalar(r["regex"]);
    const std::string given = Scalar(r["replacement"]);
    bool has_source = source.empty();
    for (const YAML::Node& label : r["sourceLabels"]) has_source |= Scalar(label) == source;
    if (Scalar(r["targetLabel"]) == target && has_source &&
        (action.empty() || action == "replace") && (regex.empty() || regex == "(.*)") &&
        (given == replacement || (given.empty() && replacement == "$1"))) {
      return true;
    }
  }
  return false;
}

// Whether `object` is a workload whose pod template has every label of
// the (matchLabels) `selector`.
bool PicksTemplate(const YAML::Node& selector, const YAML::Node& object) {
  if (kWorkloads.count(Scalar(object["kind"])) == 0) return false;
  const YAML::Node labels = object["spec"]["template"]["metadata"]["labels"];
  bool all = labels.IsMap();
  for (const auto& entry : selector) {
    all = all && Scalar(labels[entry.first.Scalar()]) == Scalar(entry.second);
  }
  return all;
}

// Collects problems, each prefixed with the object it concerns.
class Checker {
 public:
  Checker(const std::vector<YAML::Node>& objects, bool built, const HelpFlags& help)
      : objects_(objects), built_(built), help_(help) {}

  std::vector<std::string> Run();

 private:
  void Problem(const YAML::Node& object, const std::string& what) {
    problems_.push_back(ObjectId(object) + ": " + what);
  }
  const YAML::Node* Find(const std::string& kind, const std::string& name) const;
  bool SelectorPicksTemplate(const YAML::Node& selector) const;
  void CheckCommon(const YAML::Node& object);
  void CheckWorkload(const YAML::Node& object);
  void CheckVolumes(const YAML::Node& object, const YAML::Node& pod);
  void CheckContainer(const YAML::Node& object, const YAML::Node& container,
                      const YAML::Node& annotations);
  void CheckProbes(const YAML::Node& object, const YAML::Node& container, int port,
                   const YAML::Node& annotations);
  void CheckService(const YAML::Node& object);
  void CheckPodMonitor(const YAML::Node& object);
  void CheckOthers(const YAML::Node& object);
  void CheckJobFile();

  const std::vector<YAML::Node>& objects_;
  const bool built_;
  const HelpFlags& help_;
  std::vector<std::string> problems_;
  std::set<int> container_ports_;       // every containerPort, for Services
  std::set<std::string> port_names_;    // every named containerPort
  std::map<std::string, std::string> job_paths_;  // container -> its --job value
  bool scheduler_resumes_ = false;                // the scheduler has --resume
};

const YAML::Node* Checker::Find(const std::string& kind, const std::string& name) const {
  for (const YAML::Node& object : objects_) {
    if (ObjectId(object) == kind + "/" + name) return &object;
  }
  return nullptr;
}

bool Checker::SelectorPicksTemplate(const YAML::Node& selector) const {
  if (!selector.IsMap() || selector.size() == 0) return false;
  for (const YAML::Node& object : objects_) {
    if (PicksTemplate(selector, object)) return true;
  }
  return false;
}

void Checker::CheckCommon(const YAML::Node& object) {
  if (Scalar(object["apiVersion"]).empty()) Problem(object, "no apiVersion");
  if (Scalar(object["kind"]).empty()) Problem(object, "no kind");
  if (Scalar(object["metadata"]["name"]).empty()) Problem(object, "no metadata.name");
  if (built_ && Scalar(object["kind"]) != "Namespace" &&
      Scalar(object["metadata"]["namespace"]).empty()) {
    Problem(object, "no namespace after the build");
  }
}

void Checker::CheckVolumes(const YAML::Node& object, const YAML::Node& pod) {
  std::set<std::string> volumes;
  for (const YAML::Node& volume : pod["volumes"]) {
    volumes.insert(Scalar(volume["name"]));
    if (volume["configMap"] && !Find("ConfigMap", Scalar(volume["configMap"]["name"]))) {
      Problem(object, "volume " + Scalar(volume["name"]) + ": no ConfigMap " +
                          Scalar(volume["configMap"]["name"]));
    }
    if (volume["persistentVolumeClaim"] &&
        !Find("PersistentVolumeClaim", Scalar(volume["persistentVolumeClaim"]["claimName"]))) {
      Problem(object, "volume " + Scalar(volume["name"]) + ": no PersistentVolumeClaim");
    }
    // The Secret is created by the operator (docs/deploy.md), never committed.
    if (volume["secret"] && Scalar(volume["secret"]["secretName"]) != "tessera-secrets") {
      Problem(object, "secret volumes must use the documented Secret tessera-secrets");
    }
  }
  std::vector<YAML::Node> containers;
  for (const YAML::Node& c : pod["initContainers"]) containers.push_back(c);
  for (const YAML::Node& c : pod["containers"]) containers.push_back(c);
  for (const YAML::Node& container : containers) {
    for (const YAML::Node& mount : container["volumeMounts"]) {
      if (volumes.count(Scalar(mount["name"])) == 0) {
        Problem(object, "volumeMount " + Scalar(mount["name"]) + " has no volume");
      }
    }
  }
}

void Checker::CheckWorkload(const YAML::Node& object) {
  const std::string kind = Scalar(object["kind"]);
  const YAML::Node spec = object["spec"];
  const YAML::Node pod = spec["template"]["spec"];
  if (!pod["containers"].IsSequence() || pod["containers"].size() == 0) {
    return Problem(object, "no containers");
  }
  if (kind != "Job") {
    const YAML::Node match = spec["selector"]["matchLabels"];
    const YAML::Node labels = spec["template"]["metadata"]["labels"];
    bool ok = match.IsMap() && match.size() > 0 && labels.IsMap();
    for (const auto& entry : match) {
      ok = ok && Scalar(labels[entry.first.Scalar()]) == Scalar(entry.second);
    }
    if (!ok) Problem(object, "spec.selector.matchLabels do not match the template's labels");
  }
  if (kind == "StatefulSet") {
    const YAML::Node* service = Find("Service", Scalar(spec["serviceName"]));
    if (service == nullptr || Scalar((*service)["spec"]["clusterIP"]) != "None") {
      Problem(object, "serviceName must name a headless Service");
    }
    if (Scalar(spec["podManagementPolicy"]) != "Parallel") {
      Problem(object, "podManagementPolicy must be Parallel (no server is ready alone)");
    }
  }
  if (kind == "Job") {
    if (Scalar(spec["completionMode"]) != "Indexed") Problem(object, "not an Indexed Job");
    if (Int(spec["completions"]) < 1 || Int(spec["completions"]) != Int(spec["parallelism"])) {
      Problem(object, "completions must equal parallelism (every worker runs at once)");
    }
    if (Scalar(pod["restartPolicy"]) != "Never" && Scalar(pod["restartPolicy"]) != "OnFailure") {
      Problem(object, "restartPolicy must be Never or OnFailure");
    }
  }
  CheckVolumes(object, pod);
  std::map<std::string, std::string> config_volumes;  // volume -> its ConfigMap
  for (const YAML::Node& volume : pod["volumes"]) {
    if (volume["configMap"]) {
      config_volumes[Scalar(volume["name"])] = Scalar(volume["configMap"]["name"]);
    }
  }
  for (const YAML::Node& container : pod["containers"]) {
    if (Scalar(container["name"]).empty() || Scalar(container["image"]).empty()) {
      Problem(object, "a container without name or image");
    }
    if (!container["resources"]["requests"] || !container["resources"]["limits"]) {
      Problem(object, "container " + Scalar(container["name"]) + ": no resource requests/limits");
    }
    for (const YAML::Node& port : container["ports"]) {
      container_ports_.insert(Int(port["containerPort"]));
      if (port["name"]) port_names_.insert(Scalar(port["name"]));
    }
    CheckContainer(object, container, spec["template"]["metadata"]["annotations"]);
    auto job = job_paths_.find(ObjectId(object));
    if (job == job_paths_.end()) continue;
    bool mounted = false;  // --job DIR/FILE with DIR the job ConfigMap's mountPath
    for (const YAML::Node& mount : container["volumeMounts"]) {
      mounted |= config_volumes[Scalar(mount["name"])] == "tessera-job" &&
                 std::filesystem::path(job->second).parent_path() == Scalar(mount["mountPath"]);
    }
    if (!mounted) {
      Problem(object, "--job '" + job->second + "' is not in the tessera-job ConfigMap's mount");
    }
  }
}

// The value of --name=V or --name V in `args`; empty if absent.
std::string FlagValue(const std::vector<std::string>& args, const std::string& name) {
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i].rfind(name + "=", 0) == 0) return args[i].substr(name.size() + 1);
    if (args[i] == name && i + 1 < args.size()) return args[i + 1];
  }
  return "";
}

void Checker::CheckContainer(const YAML::Node& object, const YAML::Node& container,
                             const YAML::Node& annotations) {
  std::vector<std::string> argv;
  for (const YAML::Node& part : container["command"]) argv.push_back(Scalar(part));
  for (const YAML::Node& part : container["args"]) argv.push_back(Scalar(part));
  if (argv.size() < 2 || std::filesystem::path(argv[0]).filename() != "tessera") {
    return Problem(object, "container does not run `tessera SUBCOMMAND`");
  }
  const std::string sub = argv[1];
  const std::vector<std::string> args(argv.begin() + 2, argv.end());
  const std::set<std::string> known = help_(sub);
  if (known.empty()) return Problem(object, "`tessera " + sub + "` has no --help");
  std::set<std::string> env;
  for (const YAML::Node& var : container["env"]) env.insert(Scalar(var["name"]));
  static const std::regex kVar(R"(\$\(([A-Za-z_][A-Za-z0-9_]*)\))");
  for (const std::string& arg : args) {
    if (arg.rfind("--", 0) == 0 && known.count(arg.substr(0, arg.find('='))) == 0) {
      Problem(object, "`tessera " + sub + "` has no flag " + arg.substr(0, arg.find('=')));
    }
    for (std::sregex_iterator it(arg.begin(), arg.end(), kVar), end; it != end; ++it) {
      if (env.count((*it)[1]) == 0) Problem(object, (*it)[0].str() + " is not defined in env");
    }
  }
  const int port = std::atoi(FlagValue(args, sub == "serve" ? "--port" : "--metrics-port").c_str());
  if (port <= 0) return Problem(object, "no fixed metrics port (--metrics-port / --port)");
  CheckProbes(object, container, port, annotations);
  if (sub != "serve") {
    const std::string bind = FlagValue(args, "--bind");
    const int bind_port = std::atoi(bind.substr(bind.rfind(':') + 1).c_str());
    bool declared = false;
    for (const YAML::Node& p : container["ports"]) declared |= Int(p["containerPort"]) == bind_port;
    if (bind.rfind("tcp://0.0.0.0:", 0) != 0 || !declared) {
      Problem(object, "--bind must be tcp://0.0.0.0:PORT with PORT a containerPort");
    }
    if (FlagValue(args, "--host").empty()) Problem(object, "no --host (the pod IP)");
  }
  if (sub == "scheduler" || sub == "server" || sub == "worker") {
    job_paths_[ObjectId(object)] = FlagValue(args, "--job");
    if (sub == "scheduler") {
      scheduler_resumes_ = std::find(args.begin(), args.end(), "--resume") != args.end();
    }
  }
  for (const YAML::Node& var : container["env"]) {
    if (Scalar(var["name"]) != "TESSERA_SCHEDULER") continue;
    static const std::regex kAddress(R"(tcp://([a-z0-9-]+):(\d+))");
    std::smatch m;
    const std::string value = Scalar(var["value"]);
    const YAML::Node* service =
        std::regex_match(value, m, kAddress) ? Find("Service", m[1].str()) : nullptr;
    bool has_port = false;
    if (service != nullptr) {
      for (const YAML::Node& p : (*service)["spec"]["ports"]) has_port |= Scalar(p["port"]) == m[2];
    }
    if (!has_port) Problem(object, "TESSERA_SCHEDULER " + value + " is no Service port");
  }
}

void Checker::CheckProbes(const YAML::Node& object, const YAML::Node& container, int port,
                          const YAML::Node& annotations) {
  bool declared = false;
  for (const YAML::Node& p : container["ports"]) declared |= Int(p["containerPort"]) == port;
  if (!declared) Problem(object, "metrics port " + std::to_string(port) + " is no containerPort");
  const std::pair<const char*, const char*> kProbes[] = {{"livenessProbe", "/healthz"},
                                                         {"readinessProbe", "/readyz"}};
  for (const auto& [probe, path] : kProbes) {
    const YAML::Node get = container[probe]["httpGet"];
    if (Scalar(get["path"]) != path || Int(get["port"]) != port) {
      Problem(object, std::string(probe) + " must be GET " + path + " on port " +
                          std::to_string(port));
    }
  }
  if (Scalar(annotations["prometheus.io/scrape"]) != "true" ||
      Int(annotations["prometheus.io/port"]) != port ||
      Scalar(annotations["prometheus.io/path"]) != "/metrics") {
    Problem(object, "prometheus.io annotations must scrape /metrics on port " +
                        std::to_string(port));
  }
}

void Checker::CheckService(const YAML::Node& object) {
  const YAML::Node spec = object["spec"];
  if (!SelectorPicksTemplate(spec["selector"])) Problem(object, "selector picks no pod template");
  if (!spec["ports"].IsSequence() || spec["ports"].size() == 0) Problem(object, "no ports");
  for (const YAML::Node& port : spec["ports"]) {
    const std::string target = Scalar(port["targetPort"]);
    const bool named = !target.empty() && !std::isdigit(static_cast<unsigned char>(target[0]));
    if (named ? port_names_.count(target) == 0
              : container_ports_.count(port["targetPort"] ? Int(port["targetPort"])
                                                          : Int(port["port"])) == 0) {
      Problem(object, "port " + Scalar(port["port"]) + " targets no container port");
    }
  }
}

void Checker::CheckOthers(const YAML::Node& object) {
  const std::string kind = Scalar(object["kind"]);
  const YAML::Node spec = object["spec"];
  if (kind == "ConfigMap" && !object["data"].IsMap()) Problem(object, "no data");
  if (kind == "PersistentVolumeClaim") {
    bool rwx = false;
    for (const YAML::Node& mode : spec["accessModes"]) rwx |= Scalar(mode) == "ReadWriteMany";
    if (!rwx) Problem(object, "must be ReadWriteMany (serving replicas share it)");
    if (Scalar(spec["resources"]["requests"]["storage"]).empty()) Problem(object, "no size");
  }
  if (kind == "HorizontalPodAutoscaler") {
    const YAML::Node target = spec["scaleTargetRef"];
    if (!Find(Scalar(target["kind"]), Scalar(target["name"]))) Problem(object, "no target");
    if (Int(spec["minReplicas"], 1) > Int(spec["maxReplicas"])) {
      Problem(object, "minReplicas > maxReplicas");
    }
  }
  if (kind == "PodMonitor") CheckPodMonitor(object);
}

void Checker::CheckPodMonitor(const YAML::Node& object) {
  const YAML::Node spec = object["spec"];
  const YAML::Node selector = spec["selector"]["matchLabels"];
  if (!SelectorPicksTemplate(selector)) Problem(object, "selector picks no pod template");
  for (const YAML::Node& endpoint : spec["podMetricsEndpoints"]) {
    const std::string port = Scalar(endpoint["port"]);
    if (port_names_.count(port) == 0 || Scalar(endpoint["path"]) != "/metrics") {
      Problem(object, "endpoint " + port + " is no named /metrics port");
    }
    // The operator names the job <namespace>/<name>: the alerts would see nothing.
    if (!SetsLabel(endpoint["relabelings"], "job", "", kAlertsJob)) {
      Problem(object, "endpoint " + port + " does not relabel job to \"" + kAlertsJob +
                          "\" (the alert rules' job)");
    }
    if (!SetsLabel(endpoint["relabelings"], "role", kComponentMeta, "$1")) {
      Problem(object, "endpoint " + port + " does not set role from the pod label " +
                          kComponentLabel);
    }
  }
  // The role label's values: each scraped pod's component must be a role.
  if (!selector.IsMap() || selector.size() == 0) return;
  for (const YAML::Node& workload : objects_) {
    if (!PicksTemplate(selector, workload)) continue;
    const YAML::Node labels = workload["spec"]["template"]["metadata"]["labels"];
    if (kRoles.count(Scalar(labels[kComponentLabel])) == 0) {
      Problem(object, "scrapes " + ObjectId(workload) + ", whose pods' " + kComponentLabel +
                          " is no role the alerts know (scheduler|server|worker|serving)");
    }
  }
}

void Checker::CheckJobFile() {
  const YAML::Node* config = Find("ConfigMap", "tessera-job");
  const YAML::Node* servers = Find("StatefulSet", "tessera-server");
  const YAML::Node* workers = Find("Job", "tessera-worker");
  if (config == nullptr || servers == nullptr || workers == nullptr) {
    problems_.push_back("missing ConfigMap/tessera-job, StatefulSet/tessera-server or "
                        "Job/tessera-worker");
    return;
  }
  testing::TempDir dir;
  std::ofstream(dir.File("job.yaml")) << Scalar((*config)["data"]["job.yaml"]);
  StatusOr<models::JobConfig> job = models::LoadJobConfig(dir.File("job.yaml"), {});
  if (!job.ok()) return Problem(*config, "job.yaml: " + std::string(job.status().message()));
  if (scheduler_resumes_ && !job->publish.enabled()) {
    Problem(*config, "job.yaml: the scheduler's --resume needs publish.model_dir");
  }
  if (Int((*servers)["spec"]["replicas"]) != job->cluster.servers) {
    Problem(*servers, "replicas differ from the job's cluster.servers " +
                          std::to_string(job->cluster.servers));
  }
  if (Int((*workers)["spec"]["completions"]) != job->cluster.workers) {
    Problem(*workers, "completions differ from the job's cluster.workers " +
                          std::to_string(job->cluster.workers));
  }
  for (const auto& [id, path] : job_paths_) {
    if (!(*config)["data"][std::filesystem::path(path).filename().string()]) {
      problems_.push_back(id + ": --job '" + path + "' names no key of ConfigMap/tessera-job");
    }
  }
}

std::vector<std::string> Checker::Run() {
  // yaml-cpp throws on a lookup below a missing key: a required field absent.
  auto guarded = [this](const YAML::Node& object, const std::function<void()>& check) {
    try {
      check();
    } catch (const YAML::Exception& e) {
      Problem(object, std::string("a required field is missing or malformed: ") + e.what());
    }
  };
  for (const YAML::Node& object : objects_) guarded(object, [&] { CheckCommon(object); });
  for (const YAML::Node& object : objects_) {
    if (kWorkloads.count(Scalar(object["kind"])) != 0) {
      guarded(object, [&] { CheckWorkload(object); });
    }
  }
  for (const YAML::Node& object : objects_) {
    guarded(object, [&] {
      if (Scalar(object["kind"]) == "Service") CheckService(object);
      CheckOthers(object);
    });
  }
  try {
    CheckJobFile();
  } catch (const YAML::Exception& e) {
    problems_.push_back(std::string("job file objects malformed: ") + e.what());
  }
  return problems_;
}

}  // namespace

std::vector<std::string> CheckManifests(const std::vector<YAML::Node>& objects, bool built,
                                        const HelpFlags& help_flags) {
  return Checker(objects, built, help_flags).Run();
}

std::set<std::string> ParseHelpFlags(const std::string& help) {
  std::set<std::string> flags;
  static const std::regex kFlag(R"(--[a-z][a-z0-9-]*)");
  for (std::sregex_iterator it(help.begin(), help.end(), kFlag), end; it != end; ++it) {
    flags.insert(it->str());
  }
  return flags;
}

}  // namespace tessera::deploy
