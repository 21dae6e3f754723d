// `recovery_bench`: how long training stalls when a server dies
// (reliability issue 6, "Recovery time (death -> training resumes)").
//
// Per trial, with real processes over loopback: a scheduler, --servers
// servers (`cluster.replication: 2`, heartbeat every 100 ms, timeout
// 300 ms) and --workers workers started node by node train `tessera gen`
// data; once worker 0 trained --kill-after examples, server 1 is killed
// with SIGKILL (T). Every worker's /metrics is scraped every --poll-ms
// (tessera_worker_examples_total: examples of completed steps;
// tessera_worker_kv_retried_parts_total: parts resent after the view that
// promotes the backup), and the scheduler's
// tessera_scheduler_last_recovery_seconds (set once the view went to the
// workers). Training has resumed at the first scrape whose examples advanced
// after a scrape round that already showed resent parts or the scheduler's
// gauge (so a step that finished on its own right after the kill does not
// count; a worker may have nothing to resend: its steps can wait on another
// server's replies, held until that server's new backup has its copy); the
// figure is that scrape's time - T (first worker, and every worker).
// Baselines from the same run: the scheduler's own
// tessera_scheduler_last_recovery_seconds (dead server's last heartbeat ->
// view at the workers) and, before the kill, the median and longest gap
// between two advances of worker 0's counter (the normal step interval,
// as scraped). The job then runs to its end; a trial counts as finished
// when every node but the killed one exits 0.
//
// Flags ("--flag=V" or "--flag V"):
//   --tessera PATH     the binary (default $TESSERA_BIN, else ../tools/tessera
//                      next to this executable)
//   --trials N         trials (default 5)
//   --rows N           `tessera gen` rows (default 200000)
//   --servers N, --workers N   cluster size (default 3, 2)
//   --kill-after N     examples worker 0 trains before the kill (default 30000)
//   --consistency C    train.consistency (default async)
//   --poll-ms MS       scrape period (default 5)
//   --keep             keep the temp directory (printed)
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "bench/bench_flags.h"
#include "bench/bench_util.h"
#include "tests/e2e/process_cluster.h"
#include "tests/e2e/process_util.h"

namespace tessera::bench {
namespace {

namespace fs = std::filesystem;
using Steady = std::chrono::steady_clock;
using std::chrono::seconds;
using testing::ProcessCluster;
using testing::ProcessNode;
using testing::ScrapeMetrics;

constexpr int kVictim = 1;

struct Flags {
  std::string tessera;
  int trials = 5, rows = 200000, servers = 3, workers = 2, kill_after = 30000, poll_ms = 5;
  std::string consistency = "async";
  bool keep = false;
};

bool ParseFlags(const std::vector<std::string>& args, Flags* f) {
  if (!ParseBenchFlags(args, {.ints = {{"--trials", &f->trials},
                                       {"--rows", &f->rows},
                                       {"--servers", &f->servers},
                                       {"--workers", &f->workers},
                                       {"--kill-after", &f->kill_after},
                                       {"--poll-ms", &f->poll_ms}},
                              .doubles = {},
                              .strings = {{"--tessera", &f->tessera},
                                          {"--consistency", &f->consistency}},
                              .keep = &f->keep})) {
    return false;
  }
  return f->trials > 0 && f->servers >= 3 && f->workers > 0 && f->poll_ms > 0;
}

struct Trial {
  bool ok = false;        // resumed, and every other node exited 0
  double resume_first = std::nan("");  // T -> first worker's step after the failover
  double resume_all = std::nan("");    // T -> every worker's
  double scheduler = std::nan("");     // tessera_scheduler_last_recovery_seconds
  double step_p50 = std::nan("");      // gaps between worker 0's advances before T
  double step_max = std::nan("");
};

void WriteJob(const Flags& f, const std::string& data, const std::string& dir) {
  std::ofstream(dir + "/job.yaml")
      << "data: {schema: " << data << "/schema.yaml, train: " << data
      << "/train.tsv, eval: " << data << "/test.tsv, chunk_mb: 1}\n"
      << "model: {type: deepfm, embedding_dim: 8, hidden: [32]}\n"
      << "train: {batch_size: 128, consistency: " << f.consistency << "}\n"
      << "cluster: {servers: " << f.servers << ", workers: " << f.workers
      << ", replication: 2, heartbeat_interval_ms: 100, heartbeat_timeout_ms: 300}\n"
      << "output_dir: " << dir << "/out\n";
}

// Scrapes the workers until training resumes after the kill at `killed`.
void MeasureResume(const Flags& f, const ProcessNode& scheduler,
                   const std::vector<ProcessNode*>& workers,
                   Steady::time_point killed, Trial* t) {
  const size_t n = workers.size();
  std::vector<double> last(n, -1);
  std::vector<bool> retried(n, false), resumed(n, false);
  bool any_retried = false;
  const auto give_up = killed + seconds(30);
  while (Steady::now() < give_up) {
    const bool retried_before = any_retried;
    // The view has reached the workers once the scheduler set its gauge.
    if (ScrapeMetrics(scheduler.metrics_port)["tessera_scheduler_last_recovery_seconds"] > 0) {
      any_retried = true;
    }
    for (size_t w = 0; w < n; ++w) {
      std::map<std::string, double> m = ScrapeMetrics(workers[w]->metrics_port);
      const auto now = Steady::now();
      if (m.empty()) continue;
      const double examples = m["tessera_worker_examples_total"];
      if (retried_before && !resumed[w] && last[w] >= 0 && examples > last[w]) {
        resumed[w] = true;
        const double s = std::chrono::duration<double>(now - killed).count();
        if (std::isnan(t->resume_first)) t->resume_first = s;
        if (std::all_of(resumed.begin(), resumed.end(), [](bool b) { return b; })) {
          t->resume_all = s;
          return;
        }
      }
      last[w] = examples;
      if (m["tessera_worker_kv_retried_parts_total"] > 0) retried[w] = true;
      any_retried = any_retried || retried[w];
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(f.poll_ms));
  }
}

Trial RunTrial(const Flags& f, const std::string& data, const std::string& dir) {
  Trial t;
  fs::create_directories(dir);
  WriteJob(f, data, dir);
  ProcessCluster cluster({.tessera = f.tessera,
                          .dir = dir,
                          .job = dir + "/job.yaml",
                          .servers = f.servers,
                          .workers = f.workers,
                          .heartbeat_interval_ms = 100,
                          .heartbeat_timeout_ms = 300});
  if (Status started = cluster.Start(); !started.ok()) {
    std::cerr << "trial " << dir << ": the cluster did not start: " << started << "\n";
    return t;
  }
  ProcessNode& victim = cluster.server(kVictim);
  std::vector<ProcessNode*> workers;
  for (int w = 0; w < f.workers; ++w) workers.push_back(&cluster.worker(w));
  // Before the kill: worker 0's advances, for the step interval.
  std::vector<double> gaps;
  double last = -1;
  auto last_advance = Steady::now();
  const bool trained = testing::PollUntil(
      [&] {
        std::map<std::string, double> m = ScrapeMetrics(workers[0]->metrics_port);
        const double examples = m["tessera_worker_examples_total"];
        const auto now = Steady::now();
        if (last > 0 && examples > last) {
          gaps.push_back(std::chrono::duration<double>(now - last_advance).count());
        }
        if (examples > last) {
          last = examples;
          last_advance = now;
        }
        return examples >= f.kill_after;
      },
      seconds(120));
  if (!trained) {
    std::cerr << "trial " << dir << ": worker 0 never trained " << f.kill_after << " examples\n";
    return t;
  }
  t.step_p50 = Percentile(gaps, 0.5);
  t.step_max = Percentile(gaps, 1.0);
  ::kill(victim.pid, SIGKILL);
  const auto killed = Steady::now();
  MeasureResume(f, cluster.scheduler(), workers, killed, &t);
  t.scheduler =
      ScrapeMetrics(cluster.scheduler().metrics_port)["tessera_scheduler_last_recovery_seconds"];
  if (t.scheduler <= 0) t.scheduler = std::nan("");
  (void)testing::WaitForExit(victim.pid, seconds(10));
  victim.pid = -1;
  const bool finished = cluster.WaitAll(seconds(300));
  t.ok = finished && !std::isnan(t.resume_all);
  return t;
}

void PrintRow(const char* what, const std::vector<double>& v) {
  std::printf("%-44s %8.3f %8.3f %8.3f\n", what, Percentile(v, 0.5), Percentile(v, 0.9),
              Percentile(v, 1.0));
}

int RunRecoveryBench(const Flags& f) {
  char tmpl[] = "/tmp/tessera-recovery-XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) return std::perror("mkdtemp"), 1;
  const std::string root = tmpl;
  // Node-by-node processes need a shared token (kept if already set).
  ::setenv("TESSERA_CLUSTER_TOKEN", "recovery-bench-token", 0);
  ::unsetenv("TESSERA_SCHEDULER");
  if (!GenerateData(f.tessera, root + "/data", f.rows)) return 1;
  std::printf("recovery_bench: %d servers (replication 2) x %d workers, %s, deepfm, batch 128, "
              "heartbeat 100 ms / timeout 300 ms; server %d SIGKILLed once worker 0 trained %d "
              "examples; /metrics scraped every %d ms; %d trials\n",
              f.servers, f.workers, f.consistency.c_str(), kVictim, f.kill_after, f.poll_ms,
              f.trials);
  std::printf("%-6s %10s %10s %10s %10s %10s %s\n", "trial", "resume", "resume_all", "scheduler",
              "step_p50", "step_max", "job");
  std::fflush(stdout);
  std::vector<double> first, all, scheduler, step_p50, step_max;
  int failed = 0;
  for (int k = 0; k < f.trials; ++k) {
    const Trial t = RunTrial(f, root + "/data", root + "/trial-" + std::to_string(k));
    std::printf("%-6d %10.3f %10.3f %10.3f %10.4f %10.4f %s\n", k, t.resume_first, t.resume_all,
                t.scheduler, t.step_p50, t.step_max, t.ok ? "finished" : "FAILED");
    std::fflush(stdout);
    if (!t.ok) ++failed;
    if (!std::isnan(t.resume_first)) first.push_back(t.resume_first);
    if (!std::isnan(t.resume_all)) all.push_back(t.resume_all);
    if (!std::isnan(t.scheduler)) scheduler.push_back(t.scheduler);
    if (!std::isnan(t.step_p50)) step_p50.push_back(t.step_p50);
    if (!std::isnan(t.step_max)) step_max.push_back(t.step_max);
  }
  std::printf("\n%-44s %8s %8s %8s   (seconds, over %zu trials)\n", "", "median", "p90", "max",
              first.size());
  PrintRow("kill -> training resumes (first worker)", first);
  PrintRow("kill -> training resumes (every worker)", all);
  PrintRow("scheduler: last heartbeat -> view at workers", scheduler);
  PrintRow("baseline: step interval before the kill", step_p50);
  PrintRow("baseline: longest step gap before the kill", step_max);
  std::printf("target: resume <= 1 s with a 300 ms heartbeat timeout: %s; %d trial(s) failed\n",
              !first.empty() && Percentile(first, 1.0) <= 1.0 ? "met" : "NOT met", failed);
  if (f.keep) {
    std::printf("kept %s\n", root.c_str());
  } else {
    fs::remove_all(root);
  }
  return failed == 0 ? 0 : 1;
}

}  // namespace
}  // namespace tessera::bench

int main(int argc, char** argv) {
  tessera::bench::Flags flags;
  flags.tessera = tessera::bench::DefaultTesseraBinary();
  if (!tessera::bench::ParseFlags(std::vector<std::string>(argv + 1, argv + argc), &flags) ||
      flags.tessera.empty()) {
    std::cerr << "usage: recovery_bench [--tessera PATH] [--trials N] [--rows N] [--servers N>=3] "
                 "[--workers N] [--kill-after N] [--consistency async|ssp|sync] [--poll-ms MS] "
                 "[--keep]\n";
    return 2;
  }
  return tessera::bench::RunRecoveryBench(flags);
}
