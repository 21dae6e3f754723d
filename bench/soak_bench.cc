// `soak_bench`: a bounded soak (reliability issue 6). Not part of CI.
//
// Real processes over loopback: a scheduler, --servers servers
// (`cluster.replication: 2`) and --workers workers train DeepFM on
// `tessera gen` data for --duration-s seconds, with feature admission
// (min_count 2) and eviction (TTL and max_rows) on. At --replace-at of the
// duration, server 1 is SIGKILLed; once the scheduler has promoted its
// backup, a replacement server process takes rank 1 back. At the end the
// scheduler gets SIGTERM and every node must exit (workers exit 1: their
// job was interrupted).
//
// Every --sample-s seconds it reads each live process's resident memory,
// threads and open descriptors (/proc/PID/status, /proc/PID/fd) and the
// workers' examples (/metrics). The report prints those over time and, per
// process, its settled value (median of the second quarter of its life) next
// to its end value (median of the last quarter) and its peak. Criteria:
// - memory flat: end <= settled * 1.10 + 16 MiB;
// - threads flat: end <= settled's peak; descriptors: end <= settled + 4;
// - no errors: no ERROR log line before the final SIGTERM except the
//   expected death of server 1;
// - training went on after the replacement, and every node exited.
// Exit status 0 when all hold.
//
// Flags ("--flag=V" or "--flag V"):
//   --tessera PATH     the binary (default $TESSERA_BIN, else ../tools/tessera)
//   --duration-s N     soak length (default 600)
//   --sample-s N       sampling period (default 5)
//   --rows N           `tessera gen` rows (default 300000)
//   --servers N, --workers N   cluster size (default 3, 2)
//   --replace-at F     when server 1 dies, as a fraction of the duration
//                      (default 0.5)
//   --keep             keep the temp directory (printed)
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <sstream>
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
  int duration_s = 600, sample_s = 5, rows = 300000, servers = 3, workers = 2;
  double replace_at = 0.5;
  bool keep = false;
};

bool ParseFlags(const std::vector<std::string>& args, Flags* f) {
  if (!ParseBenchFlags(args, {.ints = {{"--duration-s", &f->duration_s},
                                       {"--sample-s", &f->sample_s},
                                       {"--rows", &f->rows},
                                       {"--servers", &f->servers},
                                       {"--workers", &f->workers}},
                              .doubles = {{"--replace-at", &f->replace_at}},
                              .strings = {{"--tessera", &f->tessera}},
                              .keep = &f->keep})) {
    return false;
  }
  return f->servers >= 3 && f->workers > 0 && f->sample_s > 0 && f->rows > 0 &&
         f->replace_at > 0.1 && f->replace_at < 0.9 && f->duration_s >= 20;
}

void WriteJob(const Flags& f, const std::string& data, const std::string& dir) {
  std::ofstream(dir + "/job.yaml")
      << "data: {schema: " << data << "/schema.yaml, train: " << data
      << "/train.tsv, eval: " << data << "/test.tsv, chunk_mb: 1}\n"
      << "model: {type: deepfm, embedding_dim: 8, hidden: [32]}\n"
      << "train: {batch_size: 256, consistency: async, epochs: 10000}\n"
      << "cluster: {servers: " << f.servers << ", workers: " << f.workers
      << ", replication: 2, heartbeat_interval_ms: 100, heartbeat_timeout_ms: 300}\n"
      << "tables: {user_id: {admission: {min_count: 2}, eviction: {ttl_s: 30, max_rows: 20000}},"
      << " item: {admission: {min_count: 2}, eviction: {max_rows: 5000}}}\n"
      << "output_dir: " << dir << "/out\n";
}

// One process's resources at one time.
struct Usage {
  double t = 0;  // seconds since the start
  double rss_mib = 0;
  int threads = 0;
  int fds = 0;
};

std::optional<Usage> ReadUsage(pid_t pid, double t) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  if (!status) return std::nullopt;
  Usage u;
  u.t = t;
  std::string line;
  while (std::getline(status, line)) {
    std::istringstream in(line);
    std::string key;
    in >> key;
    if (key == "VmRSS:") {
      double kib = 0;
      in >> kib;
      u.rss_mib = kib / 1024;
    } else if (key == "Threads:") {
      in >> u.threads;
    }
  }
  std::error_code ec;
  for (auto it = fs::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec);
       !ec && it != fs::directory_iterator(); it.increment(ec)) {
    ++u.fds;
  }
  return u;
}

// The samples of one process (a replacement is a process of its own).
struct Track {
  std::string name;
  pid_t pid = -1;
  std::vector<Usage> samples;
};

// The values of `field` in samples [begin, end).
template <typename T>
std::vector<double> Column(const std::vector<Usage>& s, size_t begin, size_t end,
                           T Usage::*field) {
  std::vector<double> out;
  for (size_t i = begin; i < end && i < s.size(); ++i) {
    out.push_back(static_cast<double>(s[i].*field));
  }
  return out;
}

// Checks one track; prints its line; returns whether it is flat.
bool ReportTrack(const Track& track) {
  const std::vector<Usage>& s = track.samples;
  const size_t n = s.size();
  if (n < 8) {
    std::printf("%-12s %zu samples: too short to judge\n", track.name.c_str(), n);
    return true;
  }
  const size_t q2 = n / 4, q3 = n / 2, q4 = 3 * n / 4;
  const double rss_settled = Percentile(Column(s, q2, q3, &Usage::rss_mib), 0.5);
  const double rss_end = Percentile(Column(s, q4, n, &Usage::rss_mib), 0.5);
  const double rss_peak = Percentile(Column(s, 0, n, &Usage::rss_mib), 1.0);
  const double thr_settled = Percentile(Column(s, q2, q3, &Usage::threads), 1.0);
  const double thr_end = Percentile(Column(s, q4, n, &Usage::threads), 0.5);
  const double fd_settled = Percentile(Column(s, q2, q3, &Usage::fds), 0.5);
  const double fd_end = Percentile(Column(s, q4, n, &Usage::fds), 0.5);
  const bool rss_ok = rss_end <= rss_settled * 1.10 + 16;
  const bool thr_ok = thr_end <= thr_settled;
  const bool fd_ok = fd_end <= fd_settled + 4;
  std::printf("%-12s %8.1f %8.1f %8.1f %4s | %6.0f %6.0f %4s | %6.0f %6.0f %4s\n",
              track.name.c_str(), rss_settled, rss_end, rss_peak, rss_ok ? "ok" : "GREW",
              thr_settled, thr_end, thr_ok ? "ok" : "GREW", fd_settled, fd_end,
              fd_ok ? "ok" : "GREW");
  return rss_ok && thr_ok && fd_ok;
}

// ERROR lines of the logs in `dir` before the final SIGTERM, but the
// expected death of the victim.
std::vector<std::string> UnexpectedErrors(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.path().extension() != ".log") continue;
    std::ifstream in(entry.path());
    std::string line;
    while (std::getline(in, line)) {
      if (line.find("received SIGTERM") != std::string::npos) break;  // the end of the soak
      if (line.find(" ERROR ") == std::string::npos) continue;
      if (line.find("server/" + std::to_string(kVictim)) != std::string::npos &&
          line.find("declared dead") != std::string::npos) {
        continue;
      }
      out.push_back(entry.path().filename().string() + ": " + line);
    }
  }
  return out;
}

double WorkerExamples(ProcessCluster& cluster, int workers) {
  double sum = 0;
  for (int w = 0; w < workers; ++w) {
    sum += ScrapeMetrics(cluster.worker(w).metrics_port)["tessera_worker_examples_total"];
  }
  return sum;
}

int RunSoak(const Flags& f) {
  char tmpl[] = "/tmp/tessera-soak-XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) return std::perror("mkdtemp"), 1;
  const std::string root = tmpl;
  ::setenv("TESSERA_CLUSTER_TOKEN", "soak-bench-token", 0);
  ::unsetenv("TESSERA_SCHEDULER");
  if (!GenerateData(f.tessera, root + "/data", f.rows)) return 1;
  const std::string dir = root + "/run";
  fs::create_directories(dir);
  WriteJob(f, root + "/data", dir);
  std::printf("soak_bench: %d servers (replication 2) x %d workers, deepfm, async, admission "
              "min_count 2, eviction ttl 30 s / max_rows; %d s, server %d killed and replaced "
              "at %.0f%%; sampled every %d s\n",
              f.servers, f.workers, f.duration_s, kVictim, f.replace_at * 100, f.sample_s);
  ProcessCluster cluster({.tessera = f.tessera,
                          .dir = dir,
                          .job = dir + "/job.yaml",
                          .servers = f.servers,
                          .workers = f.workers,
                          .heartbeat_interval_ms = 100,
                          .heartbeat_timeout_ms = 300});
  if (Status started = cluster.Start(); !started.ok()) {
    std::cerr << "the cluster did not start: " << started << " (logs in " << dir << ")\n";
    return 1;
  }
  std::vector<Track> tracks;
  for (ProcessNode& node : cluster.nodes()) tracks.push_back({node.name, node.pid, {}});
  const auto start = Steady::now();
  const auto end = start + seconds(f.duration_s);
  const auto kill_at = start + std::chrono::milliseconds(
                                   static_cast<int64_t>(f.duration_s * 1000 * f.replace_at));
  bool killed = false, replaced = false;
  double examples_at_replace = -1, last_examples = 0;
  auto last_time = start;
  std::printf("\n%7s %10s %10s %8s %6s  %s\n", "t (s)", "examples/s", "rss (MiB)", "threads",
              "fds", "event");
  auto next = start;
  while (Steady::now() < end) {
    next += seconds(f.sample_s);
    std::string event;
    if (!killed && Steady::now() >= kill_at) {
      ::kill(cluster.server(kVictim).pid, SIGKILL);
      (void)testing::WaitForExit(cluster.server(kVictim).pid, seconds(10));
      cluster.server(kVictim).pid = -1;
      killed = true;
      event = "server-1 killed";
      // The replacement joins once the scheduler has promoted the backup.
      const bool promoted = testing::PollUntil(
          [&] {
            return ScrapeMetrics(cluster.scheduler().metrics_port)
                       ["tessera_scheduler_last_recovery_seconds"] > 0;
          },
          seconds(30));
      if (promoted && cluster.StartServer(kVictim)) {
        replaced = true;
        tracks.push_back({"server-1'", cluster.server(kVictim).pid, {}});
        event += ", replacement started";
      } else {
        event += ", NO replacement (failover not seen)";
      }
    }
    const double t = std::chrono::duration<double>(Steady::now() - start).count();
    double rss = 0, fds = 0, threads = 0;
    for (Track& track : tracks) {
      if (track.pid <= 0) continue;
      if (std::optional<Usage> u = ReadUsage(track.pid, t)) {
        track.samples.push_back(*u);
        rss += u->rss_mib;
        threads += u->threads;
        fds += u->fds;
      } else {
        track.pid = -1;  // gone
      }
    }
    const double examples = WorkerExamples(cluster, f.workers);
    const auto now = Steady::now();
    const double rate = (examples - last_examples) /
                        std::max(1e-9, std::chrono::duration<double>(now - last_time).count());
    last_examples = examples;
    last_time = now;
    if (replaced && examples_at_replace < 0) examples_at_replace = examples;
    std::printf("%7.0f %10.0f %10.1f %8.0f %6.0f  %s\n", t, rate, rss, threads, fds,
                event.c_str());
    std::fflush(stdout);
    std::this_thread::sleep_until(next);
  }
  const double final_examples = WorkerExamples(cluster, f.workers);
  ::kill(cluster.scheduler().pid, SIGTERM);
  // A job stopped by a signal is not a success: workers exit 1; what counts
  // is that every node exits (no crash, no hang).
  const bool exited = cluster.WaitAll(seconds(120), /*any_exit_code=*/true);

  std::printf("\n%-12s %8s %8s %8s %4s | %6s %6s %4s | %6s %6s %4s\n", "process", "rss set",
              "rss end", "rss max", "", "thr", "thr end", "", "fds", "fds end", "");
  bool flat = true;
  for (const Track& track : tracks) flat = ReportTrack(track) && flat;
  const std::vector<std::string> errors = UnexpectedErrors(dir);
  for (const std::string& e : errors) std::printf("unexpected: %s\n", e.c_str());
  const bool trained_on = replaced && final_examples > examples_at_replace;
  std::printf("\nexamples trained: %.0f; after the replacement: %.0f\n", final_examples,
              replaced ? final_examples - examples_at_replace : 0.0);
  std::printf("memory, threads and descriptors flat: %s; unexpected errors: %zu; server "
              "replaced and training went on: %s; every node exited: %s\n",
              flat ? "yes" : "NO", errors.size(), trained_on ? "yes" : "NO",
              exited ? "yes" : "NO");
  const bool ok = flat && errors.empty() && trained_on && exited;
  std::printf("soak: %s\n", ok ? "PASSED" : "FAILED");
  if (f.keep || !ok) {
    std::printf("kept %s\n", root.c_str());
  } else {
    fs::remove_all(root);
  }
  return ok ? 0 : 1;
}

}  // namespace
}  // namespace tessera::bench

int main(int argc, char** argv) {
  tessera::bench::Flags flags;
  flags.tessera = tessera::bench::DefaultTesseraBinary();
  if (!tessera::bench::ParseFlags(std::vector<std::string>(argv + 1, argv + argc), &flags) ||
      flags.tessera.empty()) {
    std::cerr << "usage: soak_bench [--tessera PATH] [--duration-s N>=20] [--sample-s N] "
                 "[--rows N] [--servers N>=3] [--workers N] [--replace-at 0.1..0.9] [--keep]\n";
    return 2;
  }
  return tessera::bench::RunSoak(flags);
}
