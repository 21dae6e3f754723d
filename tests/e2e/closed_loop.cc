#include "tests/e2e/closed_loop.h"

#include <sys/types.h>

#include <algorithm>
#include <chrono>
#include <optional>
#include <regex>
#include <sstream>

#include "tests/e2e/process_util.h"

namespace tessera::testing {

std::map<std::string, ArmCounts> ClosedLoopResult::Sum(size_t first, size_t last) const {
  std::map<std::string, ArmCounts> sums;
  for (size_t w = first; w < last && w < windows.size(); ++w) {
    for (const auto& [arm, c] : windows[w]) {
      ArmCounts& s = sums[arm];
      s.planted =
          (s.planted * s.shown + c.planted * c.shown) / std::max<uint64_t>(1, s.shown + c.shown);
      s.shown += c.shown;
      s.clicks += c.clicks;
    }
  }
  return sums;
}

std::vector<std::map<std::string, ArmCounts>> ParseSimulateReports(const std::string& output) {
  static const std::regex arm_re(
      R"(\| ([A-Za-z0-9_.-]+): (\d+) shown, (\d+) clicks, CTR [0-9.]+ \(planted ([0-9.]+))");
  std::vector<std::map<std::string, ArmCounts>> windows;
  std::istringstream lines(output);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("simulate: requests ", 0) != 0) continue;
    std::map<std::string, ArmCounts>& window = windows.emplace_back();
    for (std::sregex_iterator it(line.begin(), line.end(), arm_re), end; it != end; ++it) {
      window[(*it)[1]] = {.shown = std::stoull((*it)[2]),
                          .clicks = std::stoull((*it)[3]),
                          .planted = std::stod((*it)[4])};
    }
  }
  return windows;
}

ClosedLoopResult RunClosedLoop(const ClosedLoopOptions& o) {
  ClosedLoopResult result;
  int port = 0;
  const pid_t serve =
      StartServe(o.tessera,
                 {"--arm", "frozen=" + o.frozen_model + ":0.5", "--arm",
                  "continuous=" + o.publish_dir + ":0.5", "--name", "ctr", "--arm-field",
                  "request_id", "--impression-dir", o.events_dir, "--poll-ms", "100"},
                 o.log_dir + "/serve.log", &port);
  if (serve < 0) return result;
  const pid_t join = Spawn({o.tessera, "join", o.job}, o.log_dir + "/join.log");
  std::vector<std::string> simulate = {
      o.tessera,        "simulate",
      "--serve",        "http://127.0.0.1:" + std::to_string(port),
      "--name",         "ctr",
      "--requests",     std::to_string(o.requests),
      "--report-every", std::to_string(std::max(1, o.requests / o.reports)),
      "--rate",         std::to_string(o.rate)};
  simulate.insert(simulate.end(), o.world.begin(), o.world.end());
  const auto budget = std::chrono::seconds(60 + static_cast<int>(2 * o.requests / o.rate));
  result.simulate_exit = RunToExit(simulate, o.log_dir + "/simulate.log", budget);
  result.simulate_output = ReadFileOrEmpty(o.log_dir + "/simulate.log");
  result.windows = ParseSimulateReports(result.simulate_output);
  const std::optional<HttpResult> ab = HttpGet(port, "/v1/ab");
  if (ab && ab->status == 200) result.ab_json = ab->body;
  result.join_exit = StopProcess(join, std::chrono::seconds(30));
  result.serve_exit = StopProcess(serve, std::chrono::seconds(30));
  return result;
}

}  // namespace tessera::testing
