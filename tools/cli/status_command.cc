#include "tools/cli/status_command.h"

#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <vector>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "common/shutdown_signals.h"
#include "tools/cli/cluster_file.h"

namespace tessera::cli {
namespace {

using nlohmann::json;

struct StatusFlags {
  std::string scheduler;
  std::string run;
  std::vector<std::string> serve;  // HOST:PORT of `tessera serve`s (A/B results)
  bool json = false;
  std::vector<double> watch;  // empty: once; given without a value: 2 s
  bool watch_given = false;
  double timeout_s = 5;
};

constexpr double kDefaultWatchSeconds = 2;

// Never throws on a document of the wrong shape: missing or mistyped fields
// read as absent.
std::optional<double> Number(const json& j, const char* key) {
  if (!j.is_object()) return std::nullopt;
  auto it = j.find(key);
  if (it == j.end() || !it->is_number()) return std::nullopt;
  return it->get<double>();
}

std::string Text(const json& j, const char* key) {
  if (!j.is_object()) return "";
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}

std::string Integer(const json& j, const char* key) {
  std::optional<double> v = Number(j, key);
  if (!v) return "-";
  return std::to_string(static_cast<long long>(*v));
}

std::string Fixed(std::optional<double> v, int decimals, std::string_view unit = "") {
  if (!v) return "-";
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.*f", decimals, *v);
  std::string out(buf);
  out.append(unit);
  return out;
}

std::string Bytes(std::optional<double> v) {
  if (!v) return "-";
  static constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double x = *v;
  int unit = 0;
  while (x >= 1024 && unit < 4) {
    x /= 1024;
    ++unit;
  }
  return Fixed(x, unit == 0 ? 0 : 1, std::string(" ") + kUnits[unit]);
}

// Left-aligned columns separated by two spaces.
std::string Columns(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> width;
  for (const auto& row : rows) {
    if (width.size() < row.size()) width.resize(row.size(), 0);
    for (size_t c = 0; c < row.size(); ++c) width[c] = std::max(width[c], row[c].size());
  }
  std::string out;
  for (const auto& row : rows) {
    std::string line;
    for (size_t c = 0; c < row.size(); ++c) {
      line += row[c];
      if (c + 1 < row.size()) line.append(width[c] - row[c].size() + 2, ' ');
    }
    out += line;
    out += '\n';
  }
  return out;
}

const json& ArrayOr(const json& doc, const char* key) {
  static const json kEmpty = json::array();
  auto it = doc.find(key);
  return it != doc.end() && it->is_array() ? *it : kEmpty;
}

std::string Summary(const json& doc) {
  std::string out = "cluster: ";
  auto running = doc.find("running");
  out += running != doc.end() && running->is_boolean() && running->get<bool>() ? "running"
                                                                                : "starting";
  out += ", view epoch " + Integer(doc, "epoch") + ", replication " +
         Integer(doc, "replication") + ", " + Integer(doc, "num_slots") + " slots\n";
  const json progress = doc.value("progress", json::object());
  std::optional<double> done = Number(progress, "chunks_completed");
  std::optional<double> total = Number(progress, "chunks_total");
  out += "data: " + Integer(progress, "chunks_completed") + "/" +
         Integer(progress, "chunks_total") + " chunks";
  if (done && total && *total > 0) out += " (" + Fixed(100 * *done / *total, 1, "%") + ")";
  out += '\n';
  const json model = doc.value("model", json::object());
  std::optional<double> version = Number(model, "version");
  if (!version || *version == 0) {
    out += "model: no version published\n";
  } else {
    out += "model: version " + Integer(model, "version") + ", freshness " +
           Fixed(Number(model, "freshness_s"), 1, " s") + "\n";
  }
  return out;
}

}  // namespace

StatusOr<HttpAddress> ParseHttpAddress(std::string_view text) {
  if (text.starts_with("http://")) text.remove_prefix(7);
  while (!text.empty() && text.back() == '/') text.remove_suffix(1);
  const size_t colon = text.rfind(':');
  if (colon == std::string_view::npos) {
    return InvalidArgumentError("expected HOST:PORT, got '" + std::string(text) + "'");
  }
  HttpAddress address;
  address.host = std::string(text.substr(0, colon));
  if (address.host.empty()) address.host = "127.0.0.1";
  const std::string port(text.substr(colon + 1));
  char* end = nullptr;
  const long value = std::strtol(port.c_str(), &end, 10);
  if (port.empty() || *end != '\0' || value <= 0 || value > 65535) {
    return InvalidArgumentError("bad port in '" + std::string(text) + "'");
  }
  address.port = static_cast<int>(value);
  return address;
}

StatusOr<HttpAddress> SchedulerHttpOfRun(const std::string& dir) {
  const std::string path = (std::filesystem::path(dir) / "cluster.json").string();
  if (!std::filesystem::exists(path)) {
    return NotFoundError(path + " does not exist: is the job running (or give --scheduler)?");
  }
  TESSERA_ASSIGN_OR_RETURN(std::string text, ReadWholeFile(path));
  TESSERA_ASSIGN_OR_RETURN(std::vector<ClusterNodeRecord> nodes, ParseClusterJson(text));
  for (const ClusterNodeRecord& node : nodes) {
    if (node.role != Role::kScheduler) continue;
    if (node.metrics_port <= 0) return NotFoundError(path + ": the scheduler has no HTTP port");
    // tcp://HOST:PORT -> HOST
    std::string host = node.addr;
    if (const size_t scheme = host.find("://"); scheme != std::string::npos) {
      host = host.substr(scheme + 3);
    }
    if (const size_t colon = host.rfind(':'); colon != std::string::npos) host.resize(colon);
    if (host.empty() || host == "0.0.0.0" || host == "*") host = "127.0.0.1";
    return HttpAddress{host, node.metrics_port};
  }
  return NotFoundError(path + " names no scheduler");
}

namespace {

// GET `path` of `address`; `hint` follows the error when nothing answers.
StatusOr<std::string> FetchJson(const HttpAddress& address, const std::string& path,
                                const std::string& what, const std::string& hint,
                                std::chrono::milliseconds timeout) {
  httplib::Client client(address.host, address.port);
  client.set_connection_timeout(timeout);
  client.set_read_timeout(timeout);
  const std::string where =
      "http://" + address.host + ":" + std::to_string(address.port) + path;
  httplib::Result result = client.Get(path);
  if (!result) {
    return UnavailableError("no " + what + " answers at " + where + " (" +
                            httplib::to_string(result.error()) + ")" + hint);
  }
  if (result->status != 200) {
    return InternalError(where + " answered HTTP " + std::to_string(result->status) + ": " +
                         result->body);
  }
  return result->body;
}

}  // namespace

StatusOr<std::string> FetchClusterStatus(const HttpAddress& address,
                                         std::chrono::milliseconds timeout) {
  return FetchJson(address, "/v1/status", "scheduler",
                   ": is the job running, and is this its scheduler's HTTP (metrics) port?",
                   timeout);
}

StatusOr<std::string> FetchAbResults(const HttpAddress& address,
                                     std::chrono::milliseconds timeout) {
  return FetchJson(address, "/v1/ab", "tessera serve", ": is it running on that port?", timeout);
}

StatusOr<std::string> RenderAbTable(std::string_view text, std::string_view serve) {
  const json doc = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!doc.is_object() || !doc.contains("arms")) {
    return InvalidArgumentError("not an A/B document");
  }
  std::map<std::string, const json*> tests;
  for (const json& t : ArrayOr(doc, "tests")) tests[Text(t, "arm")] = &t;
  std::vector<std::vector<std::string>> rows = {
      {"ARM", "IMPRESSIONS", "CLICKS", "CTR", "95% CI", "VS", "Z", "P"}};
  for (const json& a : ArrayOr(doc, "arms")) {
    const std::string arm = Text(a, "arm");
    auto percent = [&a](const char* key) {
      std::optional<double> v = Number(a, key);
      return v ? Fixed(*v * 100, 2, "%") : std::string("-");
    };
    std::vector<std::string> row = {arm, Integer(a, "impressions"), Integer(a, "clicks"),
                                     percent("ctr"),
                                     percent("ctr_low") + " .. " + percent("ctr_high")};
    if (auto it = tests.find(arm); it != tests.end()) {
      row.push_back(Text(*it->second, "versus"));
      row.push_back(Fixed(Number(*it->second, "z"), 2));
      row.push_back(Fixed(Number(*it->second, "p_value"), 4));
    } else {
      row.insert(row.end(), {"(control)", "", ""});
    }
    rows.push_back(std::move(row));
  }
  return "\nA/B (serve " + std::string(serve) + ")\n" + Columns(rows);
}

StatusOr<std::string> RenderStatusTable(std::string_view text) {
  const json doc = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!doc.is_object() || !doc.contains("nodes")) {
    return InvalidArgumentError("not a status document");
  }
  std::string out = Summary(doc);
  std::vector<std::vector<std::string>> nodes = {
      {"ROLE", "ID", "ADDRESS", "HOST", "PID", "HTTP", "HEALTH", "LAST HEARTBEAT"}};
  for (const json& n : ArrayOr(doc, "nodes")) {
    std::optional<double> age = Number(n, "heartbeat_age_s");
    nodes.push_back({Text(n, "role"), Integer(n, "id"), Text(n, "address"), Text(n, "host"),
                     Integer(n, "pid"), Integer(n, "metrics_port"), Text(n, "health"),
                     age ? Fixed(age, 1, " s ago") : "-"});
  }
  out += "\nNODES\n" + Columns(nodes);
  std::vector<std::vector<std::string>> shards = {
      {"SERVER", "SLOTS", "ROWS", "BYTES", "KEYS/S"}};
  for (const json& s : ArrayOr(doc, "shards")) {
    shards.push_back({Integer(s, "server"), Integer(s, "slots"), Integer(s, "rows"),
                      Bytes(Number(s, "bytes")), Fixed(Number(s, "keys_per_s"), 0)});
  }
  out += "\nSHARDS\n" + Columns(shards);
  std::vector<std::vector<std::string>> workers = {
      {"WORKER", "EXAMPLES", "STEPS", "SAMPLES/S", "STALENESS"}};
  for (const json& w : ArrayOr(doc, "workers")) {
    workers.push_back({Integer(w, "worker"), Integer(w, "examples"), Integer(w, "steps"),
                       Fixed(Number(w, "samples_per_s"), 0), Integer(w, "staleness")});
  }
  out += "\nWORKERS\n" + Columns(workers);
  return out;
}

namespace {

// Waits `seconds` or until SIGINT/SIGTERM (blocked by main, so taken here
// synchronously). True if a signal came.
bool SleepOrSignal(double seconds) {
  const sigset_t set = ShutdownSignalSet();
  timespec ts;
  ts.tv_sec = static_cast<time_t>(seconds);
  ts.tv_nsec = static_cast<long>((seconds - static_cast<double>(ts.tv_sec)) * 1e9);
  while (true) {
    const int signo = sigtimedwait(&set, nullptr, &ts);
    if (signo > 0) return true;
    if (errno == EAGAIN) return false;
    // EINTR: another signal; wait again (the full interval; harmless).
  }
}

// One refresh: the cluster's tables (or document) and every serve's A/B
// results. Errors name what did not answer.
StatusOr<std::string> Snapshot(const StatusFlags& flags, const std::optional<HttpAddress>& cluster,
                               const std::vector<HttpAddress>& serves,
                               std::chrono::milliseconds timeout) {
  json doc = json::object();
  std::string text;
  if (cluster) {
    TESSERA_ASSIGN_OR_RETURN(std::string status, FetchClusterStatus(*cluster, timeout));
    if (flags.json && serves.empty()) return status + "\n";  // the document as served
    if (flags.json) {
      doc = json::parse(status, nullptr, /*allow_exceptions=*/false);
      if (!doc.is_object()) return InvalidArgumentError("the scheduler sent no JSON object");
    } else {
      TESSERA_ASSIGN_OR_RETURN(text, RenderStatusTable(status));
    }
  }
  for (size_t i = 0; i < serves.size(); ++i) {
    TESSERA_ASSIGN_OR_RETURN(std::string ab, FetchAbResults(serves[i], timeout));
    if (flags.json) {
      doc["ab"].push_back({{"serve", flags.serve[i]},
                           {"results", json::parse(ab, nullptr, /*allow_exceptions=*/false)}});
    } else {
      TESSERA_ASSIGN_OR_RETURN(std::string table, RenderAbTable(ab, flags.serve[i]));
      text += table;
    }
  }
  return flags.json ? doc.dump() + "\n" : text;
}

int RunStatus(const StatusFlags& flags) {
  std::optional<HttpAddress> cluster;
  if (!flags.scheduler.empty() || !flags.run.empty()) {
    StatusOr<HttpAddress> address = flags.scheduler.empty() ? SchedulerHttpOfRun(flags.run)
                                                            : ParseHttpAddress(flags.scheduler);
    if (!address.ok()) {
      std::cerr << "tessera status: " << address.status().message() << "\n";
      return kExitUsage;
    }
    cluster = *address;
  }
  std::vector<HttpAddress> serves;
  for (const std::string& s : flags.serve) {
    StatusOr<HttpAddress> address = ParseHttpAddress(s);
    if (!address.ok()) {
      std::cerr << "tessera status: --serve: " << address.status().message() << "\n";
      return kExitUsage;
    }
    serves.push_back(*address);
  }
  const auto timeout =
      std::chrono::milliseconds(static_cast<int64_t>(std::max(flags.timeout_s, 0.1) * 1000));
  const double every = flags.watch.empty() ? kDefaultWatchSeconds : flags.watch.front();
  const bool tty = ::isatty(STDOUT_FILENO) == 1;
  while (true) {
    StatusOr<std::string> snapshot = Snapshot(flags, cluster, serves, timeout);
    if (!snapshot.ok()) {
      std::cerr << "tessera status: " << snapshot.status().message() << "\n";
      return 1;
    }
    const std::string& text = *snapshot;
    if (flags.watch_given && tty && !flags.json) std::cout << "\033[H\033[2J";
    std::cout << text << std::flush;
    if (!flags.watch_given) return 0;
    if (!flags.json) std::cout << "\n";
    if (SleepOrSignal(every)) return 0;
  }
}

}  // namespace

void AddStatusCommand(CLI::App* app, Command* selected) {
  auto flags = std::make_shared<StatusFlags>();
  CLI::App* cmd = app->add_subcommand(
      "status", "Show the nodes, shards, workers and model version of a running cluster");
  auto* scheduler = cmd->add_option(
      "--scheduler", flags->scheduler,
      "The scheduler's HTTP address HOST:PORT: the port that serves its /metrics "
      "(--metrics-port of `tessera scheduler`; metrics_port in cluster.json)");
  auto* run = cmd->add_option("--run", flags->run,
                              "A directory holding the job's cluster.json (the output_dir of "
                              "`tessera train` / `local`, or where `tessera scheduler "
                              "--cluster-file` wrote it), which names the scheduler");
  scheduler->excludes(run);
  cmd->add_option("--serve", flags->serve,
                  "Also show the A/B results (per arm: impressions, clicks, CTR with its 95% "
                  "interval, z-test against the control) of a `tessera serve` at HOST:PORT "
                  "(repeatable; alone, without a cluster)");
  cmd->add_flag("--json", flags->json, "Print the status document (JSON) instead of tables");
  auto* watch = cmd->add_option("--watch", flags->watch,
                                "Refresh every SECONDS (default 2) until interrupted")
                    ->expected(0, 1)
                    ->check(CLI::PositiveNumber);
  cmd->add_option("--timeout-s", flags->timeout_s, "How long to wait for the scheduler")
      ->capture_default_str();
  cmd->footer(
      "The scheduler serves the document at GET /v1/status on its HTTP port (next to\n"
      "/metrics, /healthz, /readyz). Exit code 1 when no scheduler answers.\n"
      "Example: tessera status --run runs/ctr\n"
      "         tessera status --scheduler scheduler.tessera:9100 --json\n"
      "         tessera status --run runs/ctr --watch 5\n"
      "         tessera status --run runs/ctr --serve 127.0.0.1:8501");
  cmd->callback([flags, watch, selected] {
    flags->watch_given = watch->count() > 0;
    if (flags->scheduler.empty() && flags->run.empty() && flags->serve.empty()) {
      *selected = [] {
        std::cerr << "tessera status: give --scheduler HOST:PORT, --run DIR or --serve "
                     "HOST:PORT\n";
        return kExitUsage;
      };
      return;
    }
    *selected = [flags] { return RunStatus(*flags); };
  });
}

}  // namespace tessera::cli
