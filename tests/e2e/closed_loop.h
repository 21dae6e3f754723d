// The closed loop of the closing-the-loop issue, driven from outside with
// real processes, for the e2e test and the drift benchmark:
//   `tessera serve` with two A/B arms 50/50, `frozen` (a saved model, never
//   updated) and `continuous` (a training job's publish directory,
//   followed), logging impressions and feedback to `events_dir`;
//   `tessera join JOB` labelling that log into the directory the job
//   follows; and `tessera simulate` sending shoppers at a fixed rate.
// The training job itself (`tessera train JOB`, following its directory and
// publishing) is the caller's: it runs before and after the loop.
#ifndef TESSERA_TESTS_E2E_CLOSED_LOOP_H_
#define TESSERA_TESTS_E2E_CLOSED_LOOP_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace tessera::testing {

struct ClosedLoopOptions {
  std::string tessera;       // the binary
  std::string job;           // job file: data.follow, publish.model_dir, join keys
  std::string frozen_model;  // the frozen arm's saved model (a version directory)
  std::string publish_dir;   // the continuous arm: the job's publish.model_dir
  std::string events_dir;    // serve's --impression-dir (the job's join.impression_dir)
  std::string log_dir;       // serve.log, join.log, simulate.log
  // simulate's world: --users --items --seed --drift --item-drift
  // --after-rows, as the data the models were trained on.
  std::vector<std::string> world;
  int requests = 12000;
  int reports = 10;   // report windows (requests / reports visits each)
  double rate = 400;  // visits per second (fewer if serve cannot keep up)
};

struct ArmCounts {
  uint64_t shown = 0;
  uint64_t clicks = 0;
  double planted = 0;  // planted CTR of what was shown
  double Ctr() const { return shown == 0 ? 0 : static_cast<double>(clicks) / shown; }
};

struct ClosedLoopResult {
  // Per report window, per arm (simulate's report lines).
  std::vector<std::map<std::string, ArmCounts>> windows;
  std::string simulate_output;
  std::string ab_json;  // GET /v1/ab at the end
  int simulate_exit = -1, join_exit = -1, serve_exit = -1;
  // Sum of windows [first, last) per arm.
  std::map<std::string, ArmCounts> Sum(size_t first, size_t last) const;
};

// Runs serve, join and simulate to the end of the simulation, then stops
// join and serve (SIGTERM). A step that fails leaves its exit code -1 (or
// the process's) and the rest empty; the logs say why.
ClosedLoopResult RunClosedLoop(const ClosedLoopOptions& options);

// Parses simulate's report lines ("simulate: requests A-B (...) | ARM: N
// shown, C clicks, CTR x (planted p, ...) | ...").
std::vector<std::map<std::string, ArmCounts>> ParseSimulateReports(const std::string& output);

}  // namespace tessera::testing

#endif  // TESSERA_TESTS_E2E_CLOSED_LOOP_H_
