// `freshness_bench`: how long an event takes to reach `tessera serve`'s
// predictions (continuous-training issue 5, "Freshness and latency").
//
// Per publish interval (--interval, then --baseline-interval), with real
// processes over loopback:
//   1. `tessera gen` writes a small dataset (once per invocation);
//   2. `tessera train JOB` reads data.train = zmq+tcp://127.0.0.1:PORT and
//      publishes every interval_s into PUB (full_every 20, keep 10);
//   3. a producer thread pushes the generated lines over a ZeroMQ PUSH socket
//      at --rate lines/s, so training is busy;
//   4. `tessera serve --model-dir PUB --port 0 --poll-ms 50` follows PUB.
// Each trial k takes an item never seen ("fresh-<interval>-<k>"), reads the
// served prediction of a fixed instance with that item (its untrained
// value), pushes one clicked line with the item on its own PUSH socket (t0)
// and polls :predict every --poll-ms until the reply's model reflects the
// update (t1). Freshness = t1 - t0. Trials are spaced by a random gap in
// [0, interval) (fixed seed) so they start at random phases of the interval.
//
// "Reflects the update": under busy training every new version changes the
// dense weights, so the prediction changes at the next version whether or
// not it holds the pushed line (a cut can come before the line is trained).
// The bench therefore reads each version the server moves to: the reply
// counts once the item table of a version at or below the served one holds
// the item's row with update_count >= 1 (a pull alone never counts). The
// naive figure (first reply whose prediction changed) is printed next to it.
// Where the time goes, per trial: t0 -> the cut that captured the row
// (manifest created_unix_ms), cut -> manifest.json written (its mtime),
// written -> first reply that reflects it.
//
// Flags ("--flag=V" or "--flag V"):
//   --tessera PATH           the binary (default $TESSERA_BIN, else
//                            ../tools/tessera next to this executable)
//   --interval S             publish.interval_s measured (default 1)
//   --baseline-interval S    the baseline interval (default 5; 0: none)
//   --trials N               trials per interval (default 30)
//   --rate N                 background lines/s (default 2000)
//   --rows N                 `tessera gen` rows (default 50000)
//   --servers N, --workers N cluster size (default 1, 1)
//   --max-batch-delay-ms MS  train.max_batch_delay_ms (default 200)
//   --poll-ms MS             :predict polling period (default 5)
//   --model TYPE             model.type (default deepfm)
//   --keep                   keep the temp directory (printed)
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <random>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>
#include <zmq.hpp>

#include "bench/bench_flags.h"
#include "bench/bench_util.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/row_file.h"
#include "models/feature_hash.h"
#include "models/model_versions.h"
#include "models/schema.h"
#include "tests/e2e/process_util.h"
// After Eigen (via models/): httplib's macros break Eigen's headers.
#include <httplib.h>

namespace tessera::bench {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using Steady = std::chrono::steady_clock;
using testing::PollUntil;
using testing::ReadFileOrEmpty;

struct Flags {
  std::string tessera;
  double interval = 1, baseline_interval = 5;
  int trials = 30, rate = 2000, rows = 50000, servers = 1, workers = 1;
  int max_batch_delay_ms = 200, poll_ms = 5;
  std::string model = "deepfm";
  bool keep = false;
};

bool ParseFlags(const std::vector<std::string>& args, Flags* f) {
  if (!ParseBenchFlags(args, {.ints = {{"--trials", &f->trials},
                                       {"--rate", &f->rate},
                                       {"--rows", &f->rows},
                                       {"--servers", &f->servers},
                                       {"--workers", &f->workers},
                                       {"--max-batch-delay-ms", &f->max_batch_delay_ms},
                                       {"--poll-ms", &f->poll_ms}},
                              .doubles = {{"--interval", &f->interval},
                                          {"--baseline-interval", &f->baseline_interval}},
                              .strings = {{"--tessera", &f->tessera}, {"--model", &f->model}},
                              .keep = &f->keep})) {
    return false;
  }
  return f->trials > 0 && f->servers > 0 && f->workers > 0 && f->poll_ms > 0 &&
         f->max_batch_delay_ms > 0 && f->interval >= 0.1 && f->baseline_interval >= 0;
}

int64_t NowUnixMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// A port free at the time of the call, below Linux's ephemeral range
// (32768 up): producers connect before the job binds, and a connect retried
// to a free ephemeral port on loopback can end up connected to itself,
// holding the port. 0 if none was found.
int FreePort() {
  std::mt19937 rng(static_cast<uint32_t>(::getpid()));
  for (int attempt = 0; attempt < 100; ++attempt) {
    const int port = 20000 + static_cast<int>(rng() % 12000);
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    const bool free = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    ::close(fd);
    if (free) return port;
  }
  return 0;
}

// Pushes `lines` round-robin at `rate` lines/s (messages every 10 ms) until
// destroyed. Owns its thread and socket.
class Producer {
 public:
  Producer(zmq::context_t* ctx, const std::string& endpoint, const std::vector<std::string>* lines,
           int rate)
      : thread_([=, this] { Run(ctx, endpoint, lines, rate); }) {}
  ~Producer() {
    stop_ = true;
    thread_.join();
  }
  uint64_t sent() const { return sent_; }

 private:
  void Run(zmq::context_t* ctx, const std::string& endpoint, const std::vector<std::string>* lines,
           int rate) {
    try {
      zmq::socket_t push(*ctx, zmq::socket_type::push);
      push.set(zmq::sockopt::linger, 0);
      push.connect(endpoint);
      size_t next = 0;
      double owed = 0;
      auto tick = Steady::now();
      while (!stop_) {
        tick += std::chrono::milliseconds(10);
        std::this_thread::sleep_until(tick);
        owed += rate / 100.0;
        std::string msg;
        for (; owed >= 1; owed -= 1, next = (next + 1) % lines->size()) {
          msg.append((*lines)[next]).push_back('\n');
          ++sent_;
        }
        // A full queue (HWM) drops the message: the load is best effort.
        if (!msg.empty()) (void)push.send(zmq::buffer(msg), zmq::send_flags::dontwait);
      }
    } catch (const zmq::error_t& e) {
      std::cerr << "producer: " << e.what() << "\n";
    }
  }

  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> sent_{0};
  std::thread thread_;
};

struct Reply {
  bool ok = false;
  double prediction = 0;
  uint64_t version = 0;
};

Reply Predict(httplib::Client* client, const std::string& body, std::vector<double>* latency_ms) {
  const auto start = Steady::now();
  auto r = client->Post("/v1/models/fresh:predict", body, "application/json");
  if (latency_ms != nullptr) {
    latency_ms->push_back(std::chrono::duration<double, std::milli>(Steady::now() - start).count());
  }
  Reply reply;
  if (!r || r->status != 200) return reply;
  json j = json::parse(r->body, nullptr, false);
  if (!j.is_object() || !j.contains("predictions")) return reply;
  reply.prediction = j["predictions"][0].get<double>();
  reply.version = std::stoull(j.value("model_version", "0"));
  reply.ok = true;
  return reply;
}

// True if version `v` of `pub` holds a trained row (update_count >= 1) for
// `key` in table `table`; *created_ms and *written_ms get its manifest's
// created_unix_ms and manifest.json's mtime. False also when `v` is gone.
bool VersionHoldsKey(const std::string& pub, uint64_t v, const std::string& table, Key key,
                     int64_t* created_ms, int64_t* written_ms) {
  const std::string dir = models::VersionDir(pub, v);
  StatusOr<models::ModelManifest> m = models::ReadManifest(dir);
  if (!m.ok()) return false;
  for (const models::SavedTable& t : m->tables) {
    if (t.config.name != table) continue;
    for (const std::string& file : t.files) {
      StatusOr<std::unique_ptr<RowFileReader>> r = RowFileReader::Open(dir + "/" + file);
      if (!r.ok()) return false;
      SparseRecord row;
      for (StatusOr<bool> more = (*r)->NextRow(&row); more.ok() && *more;
           more = (*r)->NextRow(&row)) {
        if (row.key != key || row.update_count == 0) continue;
        struct stat st;
        *created_ms = m->created_unix_ms;
        *written_ms = ::stat((dir + "/manifest.json").c_str(), &st) == 0
                          ? st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000
                          : 0;
        return true;
      }
    }
  }
  return false;
}

struct Trial {
  bool ok = false;
  double freshness_s = 0, naive_s = 0;  // naive: first changed prediction
  double to_cut_s = 0, write_s = 0, pickup_s = 0;
};

// The fixed instance and the clicked line of a trial, from `line` (label
// first, the schema's column order) with the item replaced.
struct Event {
  std::string request;  // :predict body
  std::string line;     // labelled TSV line
};
Event MakeEvent(const models::Schema& schema, const std::string& line, const std::string& item) {
  std::vector<std::string> cols = absl::StrSplit(line, '\t');
  json instance = json::object();
  for (size_t f = 0; f < schema.fields().size() && f + 1 < cols.size(); ++f) {
    const models::Field& field = schema.fields()[f];
    std::string& text = cols[f + 1];
    if (field.name == "item_id") text = item;
    if (text.empty() || field.type == models::FieldType::kSequence) continue;
    if (field.type == models::FieldType::kNumeric) {
      instance[field.name] = std::stod(text);
    } else {
      instance[field.name] = text;
    }
  }
  return {json{{"instances", {instance}}}.dump(),
          absl::StrCat("1\t", absl::StrJoin(cols.begin() + 1, cols.end(), "\t"))};
}

struct Run {
  std::string root;  // the run's directory
  std::string pub;
  int port = 0;      // serve's
  std::string item_table;
  int item_table_index = -1;
  const models::Schema* schema = nullptr;
  std::string base_line;
};

Trial RunTrial(const Flags& f, const Run& run, double interval, int k, zmq::socket_t* push,
               httplib::Client* client, std::vector<double>* latency_ms) {
  const std::string item = absl::StrCat("fresh-", interval, "-", k);
  const Key key = models::HashFeature(run.item_table_index, item);
  const Event e = MakeEvent(*run.schema, run.base_line, item);
  Trial t;
  const Reply before = Predict(client, e.request, latency_ms);
  if (!before.ok) return t;
  const int64_t t0_ms = NowUnixMs();
  const auto t0 = Steady::now();
  const std::string message = e.line + "\n";
  (void)push->send(zmq::buffer(message), zmq::send_flags::none);
  const auto deadline = t0 + std::chrono::duration<double>(30 + 10 * interval);
  uint64_t checked = before.version;
  while (Steady::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(f.poll_ms));
    const Reply r = Predict(client, e.request, latency_ms);
    const auto at = Steady::now();
    const int64_t at_ms = NowUnixMs();
    if (!r.ok) continue;
    if (t.naive_s == 0 && r.prediction != before.prediction) {
      t.naive_s = std::chrono::duration<double>(at - t0).count();
    }
    for (; checked < r.version; ++checked) {
      int64_t created = 0, written = 0;
      if (!VersionHoldsKey(run.pub, checked + 1, run.item_table, key, &created, &written)) continue;
      t.ok = true;
      t.freshness_s = std::chrono::duration<double>(at - t0).count();
      t.to_cut_s = (created - t0_ms) / 1000.0;
      t.write_s = (written - created) / 1000.0;
      t.pickup_s = (at_ms - written) / 1000.0;
      return t;
    }
  }
  return t;
}

// Writes the job file for `interval` into run->root.
void WriteJob(const Flags& f, const std::string& data, double interval, int zmq_port,
              const Run& run) {
  std::ofstream job(run.root + "/job.yaml");
  job << "data: {schema: '" << data << "/schema.yaml', train: 'zmq+tcp://127.0.0.1:" << zmq_port
      << "'}\n"
      << "model: {type: " << f.model << "}\n"
      << "train: {max_batch_delay_ms: " << f.max_batch_delay_ms << "}\n"
      << "cluster: {servers: " << f.servers << ", workers: " << f.workers << "}\n"
      << "publish: {model_dir: '" << run.pub << "', interval_s: " << interval
      << ", full_every: 20, keep: 10}\n"
      << "output_dir: '" << run.root << "/out'\n";
}

// Starts serve on run->pub; sets run->port. -1 on failure (logged).
pid_t StartServe(const Flags& f, Run* run) {
  const std::string log = run->root + "/serve.log";
  const pid_t serve = testing::StartServe(
      f.tessera, {"--model-dir", run->pub, "--name", "fresh", "--poll-ms", "50"}, log, &run->port);
  if (serve < 0) std::cerr << "serve did not become ready:\n" << ReadFileOrEmpty(log);
  return serve;
}

struct Summary {
  double interval = 0;
  std::vector<Trial> trials;
  std::vector<double> latency_ms;    // new connection per request
  std::vector<double> keepalive_ms;  // one kept-alive connection
  std::vector<double> publish_s, pause_ms;  // from the train log
  int train_exit = 0, serve_exit = 0;
};

// 200 :predict requests one after another on one kept-alive connection.
void KeepAliveLatency(const Run& run, std::vector<double>* latency_ms) {
  const Event e = MakeEvent(*run.schema, run.base_line, "fresh-keepalive");
  httplib::Client client("127.0.0.1", run.port);
  client.set_keep_alive(true);
  client.set_tcp_nodelay(true);
  for (int i = 0; i < 200; ++i) Predict(&client, e.request, latency_ms);
}

// The "published version N (...) in X s, training paused Y ms" lines.
void ParseTrainLog(const std::string& log, Summary* s) {
  static const std::regex re(R"(published version \d+ \((?:full|delta)\) in ([0-9.e+-]+) s, )"
                             R"(training paused ([0-9.e+-]+) ms)");
  for (std::sregex_iterator it(log.begin(), log.end(), re), end; it != end; ++it) {
    s->publish_s.push_back(std::stod((*it)[1]));
    s->pause_ms.push_back(std::stod((*it)[2]));
  }
}

bool RunInterval(const Flags& f, const std::string& data, const std::vector<std::string>& lines,
                 Run run, double interval, zmq::context_t* ctx, Summary* s) {
  s->interval = interval;
  run.root = absl::StrCat(run.root, "/interval-", interval);
  run.pub = run.root + "/pub";
  fs::create_directories(run.root);
  const int zmq_port = FreePort();
  const std::string endpoint = absl::StrCat("tcp://127.0.0.1:", zmq_port);
  WriteJob(f, data, interval, zmq_port, run);
  const pid_t train = testing::Spawn({f.tessera, "train", run.root + "/job.yaml"},
                                     run.root + "/train.log");
  auto producer = std::make_unique<Producer>(ctx, endpoint, &lines, f.rate);
  pid_t serve = -1;
  bool ok = PollUntil(
      [&] {
        auto v = models::ListVersionNumbers(run.pub);
        return (v.ok() && !v->empty()) || !testing::ProcessAlive(train);
      },
      std::chrono::seconds(120));
  ok = ok && testing::ProcessAlive(train);
  if (!ok) std::cerr << "no version published:\n" << ReadFileOrEmpty(run.root + "/train.log");
  if (ok) ok = (serve = StartServe(f, &run)) > 0;
  if (ok) {
    zmq::socket_t push(*ctx, zmq::socket_type::push);
    push.set(zmq::sockopt::linger, 1000);
    push.connect(endpoint);
    // A new connection per request: on a kept-alive connection every reply
    // of `tessera serve` waits ~40 ms (measured below, KeepAliveLatency).
    httplib::Client client("127.0.0.1", run.port);
    client.set_tcp_nodelay(true);
    std::this_thread::sleep_for(std::chrono::seconds(2));  // a few versions in
    std::mt19937_64 rng(42);
    std::uniform_real_distribution<double> gap(0, interval);
    for (int k = 0; k < f.trials; ++k) {
      s->trials.push_back(RunTrial(f, run, interval, k, &push, &client, &s->latency_ms));
      const Trial& t = s->trials.back();
      std::fprintf(stderr,
                   "  interval %g trial %d: %s %.3f s (naive %.3f; to cut %.3f, write %.3f, "
                   "pickup %.3f)\n",
                   interval, k, t.ok ? "fresh after" : "TIMED OUT", t.freshness_s, t.naive_s,
                   t.to_cut_s, t.write_s, t.pickup_s);
      std::this_thread::sleep_for(std::chrono::duration<double>(gap(rng)));
    }
    KeepAliveLatency(run, &s->keepalive_ms);
  }
  producer.reset();
  s->serve_exit = testing::StopProcess(serve, std::chrono::seconds(30));
  s->train_exit = testing::StopProcess(train, std::chrono::seconds(120));
  ParseTrainLog(ReadFileOrEmpty(run.root + "/train.log"), s);
  return ok;
}

void Print(const Summary& s) {
  std::vector<double> fresh, naive, cut, write, pickup;
  for (const Trial& t : s.trials) {
    if (!t.ok) continue;
    fresh.push_back(t.freshness_s);
    naive.push_back(t.naive_s);
    cut.push_back(t.to_cut_s);
    write.push_back(t.write_s);
    pickup.push_back(t.pickup_s);
  }
  std::printf(
      "interval_s %g: %zu/%zu trials fresh; freshness p50 %.3f s  p90 %.3f s  p99 %.3f s  max "
      "%.3f s\n",
      s.interval, fresh.size(), s.trials.size(), Percentile(fresh, 0.5), Percentile(fresh, 0.9),
      Percentile(fresh, 0.99), Percentile(fresh, 1.0));
  std::printf("  medians: event -> cut %.3f s, cut -> manifest written %.3f s, written -> served "
              "%.3f s; naive (first changed prediction) p50 %.3f s\n",
              Percentile(cut, 0.5), Percentile(write, 0.5), Percentile(pickup, 0.5),
              Percentile(naive, 0.5));
  std::printf("  versions published %zu (publish p50 %.3f s, max %.3f s; training paused p50 "
              "%.1f ms, max %.1f ms)\n",
              s.publish_s.size(), Percentile(s.publish_s, 0.5), Percentile(s.publish_s, 1.0),
              Percentile(s.pause_ms, 0.5), Percentile(s.pause_ms, 1.0));
  std::printf("  :predict over loopback during the trials (%zu requests, a connection each): "
              "p50 %.3f ms  p99 %.3f ms\n",
              s.latency_ms.size(), Percentile(s.latency_ms, 0.5), Percentile(s.latency_ms, 0.99));
  std::printf("  :predict on one kept-alive connection (%zu requests): p50 %.3f ms  p99 %.3f ms\n",
              s.keepalive_ms.size(), Percentile(s.keepalive_ms, 0.5),
              Percentile(s.keepalive_ms, 0.99));
  std::printf("  exit status: train %d, serve %d\n", s.train_exit, s.serve_exit);
}

double MedianFreshness(const Summary& s) {
  std::vector<double> v;
  for (const Trial& t : s.trials) {
    if (t.ok) v.push_back(t.freshness_s);
  }
  return Percentile(v, 0.5);
}

int RunFreshnessBench(const Flags& f) {
  char tmpl[] = "/tmp/tessera-freshness-XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) return std::perror("mkdtemp"), 1;
  Run run;
  run.root = tmpl;
  const std::string data = run.root + "/data";
  const pid_t gen = testing::Spawn({f.tessera, "gen", "--out", data, "--rows",
                                    std::to_string(f.rows), "--seed", "5"},
                                   run.root + "/gen.log");
  std::optional<int> gen_status = testing::WaitForExit(gen, std::chrono::seconds(300));
  if (!gen_status || !WIFEXITED(*gen_status) || WEXITSTATUS(*gen_status) != 0) {
    std::cerr << "tessera gen failed:\n" << ReadFileOrEmpty(run.root + "/gen.log");
    return 1;
  }
  StatusOr<models::Schema> schema = models::Schema::Load(data + "/schema.yaml");
  if (!schema.ok()) return std::cerr << schema.status().message() << "\n", 1;
  run.schema = &*schema;
  for (const models::Field& field : schema->fields()) {
    if (field.name == "item_id") run.item_table_index = field.table_index;
  }
  if (run.item_table_index < 0) return std::cerr << "no item_id table\n", 1;
  run.item_table = schema->tables()[run.item_table_index];
  std::vector<std::string> lines;
  std::ifstream in(data + "/train.tsv");
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  if (lines.empty()) return std::cerr << "no training lines\n", 1;
  run.base_line = lines[0];
  std::printf("freshness_bench: %s, %d server(s) x %d worker(s), %d background lines/s, "
              "max_batch_delay_ms %d, serve --poll-ms 50, :predict polled every %d ms, %d trials\n",
              f.model.c_str(), f.servers, f.workers, f.rate, f.max_batch_delay_ms, f.poll_ms,
              f.trials);
  std::fflush(stdout);
  zmq::context_t ctx;
  std::vector<Summary> results;
  int rc = 0;
  for (double interval : {f.interval, f.baseline_interval}) {
    if (interval <= 0) continue;
    Summary& s = results.emplace_back();
    if (!RunInterval(f, data, lines, run, interval, &ctx, &s)) rc = 1;
    Print(s);
    std::fflush(stdout);
  }
  if (results.size() == 2) {
    std::printf("p50 freshness ratio interval %g / interval %g: %.2f\n", results[1].interval,
                results[0].interval, MedianFreshness(results[1]) / MedianFreshness(results[0]));
  }
  if (f.keep) {
    std::printf("kept %s\n", run.root.c_str());
  } else {
    fs::remove_all(run.root);
  }
  return rc;
}

}  // namespace
}  // namespace tessera::bench

int main(int argc, char** argv) {
  tessera::bench::Flags flags;
  if (const char* bin = std::getenv("TESSERA_BIN"); bin != nullptr) flags.tessera = bin;
  if (flags.tessera.empty()) {
    std::error_code ec;
    const auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
    if (!ec) flags.tessera = (self.parent_path().parent_path() / "tools" / "tessera").string();
  }
  if (!tessera::bench::ParseFlags(std::vector<std::string>(argv + 1, argv + argc), &flags) ||
      flags.tessera.empty()) {
    std::cerr << "usage: freshness_bench [--tessera PATH] [--interval S] [--baseline-interval S] "
                 "[--trials N] [--rate N] [--rows N] [--servers N] [--workers N] "
                 "[--max-batch-delay-ms MS] [--poll-ms MS] [--model TYPE] [--keep]\n";
    return 2;
  }
  return tessera::bench::RunFreshnessBench(flags);
}
