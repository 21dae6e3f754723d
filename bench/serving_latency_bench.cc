#include "bench/serving_latency_bench.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/notification.h"
#include "common/clock.h"
#include "common/metrics.h"
#include "common/row_file.h"
#include "serving/feedback/event_log_writer.h"
#include "models/gen/gen.h"
#include "models/job_config.h"
#include "models/model_versions.h"
#include "models/table_plan.h"
#include "models/tsv_parser.h"
#include "serving/feedback_service.h"
#include "serving/model_follower.h"
#include "serving/rest_api.h"
#include "tests/serving/serving_test_util.h"

namespace tessera::bench {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

struct Flags {
  std::vector<std::string> models = {"deepfm", "din"};
  double seconds = 3;
  int reps = 5;
  int extra_rows = 100000;
  int delta_ms = 200;
  int delta_rows = 2000;
  int poll_ms = 20;
  std::string dir;
  bool impressions = false;  // log every impression (serve --impression-dir)
};

bool ParseFlags(const std::vector<std::string>& args, Flags* f) {
  for (size_t i = 0; i < args.size(); ++i) {
    std::string name = args[i], value;
    if (const size_t eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name.resize(eq);
    } else if (i + 1 < args.size()) {
      value = args[++i];
    }
    const std::map<std::string, int*> ints = {{"--reps", &f->reps},
                                              {"--extra-rows", &f->extra_rows},
                                              {"--delta-ms", &f->delta_ms},
                                              {"--delta-rows", &f->delta_rows},
                                              {"--poll-ms", &f->poll_ms}};
    if (auto it = ints.find(name); it != ints.end()) {
      if (!absl::SimpleAtoi(value, it->second) || *it->second < 0) return false;
    } else if (name == "--seconds") {
      if (!absl::SimpleAtod(value, &f->seconds) || !(f->seconds > 0)) return false;
    } else if (name == "--models") {
      f->models = absl::StrSplit(value, ',');
    } else if (name == "--dir") {
      f->dir = value;
    } else if (name == "--impressions") {
      if (value != "0" && value != "1") return false;
      f->impressions = value == "1";
    } else {
      return false;
    }
  }
  return f->reps > 0 && f->poll_ms > 0 && f->delta_ms > 0;
}

// The parameters being published: per sparse table its keys and rows
// (value then state, dim * 2 floats), per dense table its values.
struct Params {
  models::ModelManifest base;
  models::Schema schema;
  std::vector<std::vector<Key>> keys;
  std::vector<std::vector<float>> rows;
  std::vector<std::vector<float>> dense;
  std::mt19937_64 rng{7};
};

// What one delta changes: per sparse table, row numbers and tombstones.
struct Changes {
  std::vector<std::vector<size_t>> rows;
  std::vector<std::vector<Key>> deleted;
};

void RandomFill(std::mt19937_64& rng, float* out, size_t n, float stddev) {
  std::normal_distribution<float> normal(0.0f, stddev);
  for (size_t i = 0; i < n; ++i) out[i] = normal(rng);
}

StatusOr<Params> MakeParams(const std::string& data_dir, const std::string& type, int extra) {
  Params p;
  TESSERA_ASSIGN_OR_RETURN(p.schema, models::Schema::Load(data_dir + "/schema.yaml"));
  models::JobConfig job;
  job.model.type = type;
  job.model.embedding_dim = 16;
  job.model.hidden = {256, 128};
  TESSERA_ASSIGN_OR_RETURN(auto model, models::NewModel(job.model, p.schema));
  p.base.schema_yaml = p.schema.ToYaml();
  p.base.model = job.model;
  p.base.num_servers = 1;
  p.base.has_optimizer_state = false;  // sparse rows carry state, dense tables not
  std::vector<absl::flat_hash_set<Key>> seen(p.schema.tables().size());
  models::TsvParser parser(&p.schema);
  std::ifstream in(data_dir + "/train.tsv");
  models::Example ex;
  std::string reason;
  for (std::string line; std::getline(in, line);) {
    if (parser.Parse(line, &ex, &reason) == models::LineKind::kBad) continue;
    for (size_t f = 0; f < p.schema.fields().size(); ++f) {
      const int t = p.schema.fields()[f].table_index;
      if (t >= 0)
        seen[t].insert(ex.FieldKeys(static_cast<int>(f)).begin(),
                       ex.FieldKeys(static_cast<int>(f)).end());
    }
  }
  for (const TableConfig& t : models::PlanTables(job, p.schema, *model)) {
    p.base.tables.push_back({t, {}});
    if (t.kind == TableKind::kDense) {
      p.dense.emplace_back(t.size);
      RandomFill(p.rng, p.dense.back().data(), t.size, 0.05f);
      continue;
    }
    std::vector<Key>& keys =
        p.keys.emplace_back(seen[p.keys.size()].begin(), seen[p.keys.size()].end());
    for (int i = 0; i < extra; ++i) keys.push_back(p.rng());
    p.rows.emplace_back(keys.size() * t.dim * 2);
    RandomFill(p.rng, p.rows.back().data(), p.rows.back().size(), 0.1f);
  }
  return p;
}

// Writes version `version`: full if `changes` is null, else a delta on
// version - 1.
Status WriteVersion(const std::string& publish_dir, uint64_t version, const Params& p,
                    const Changes* changes) {
  const std::string dir = models::VersionDir(publish_dir, version);
  models::ModelManifest m = p.base;
  m.version = version;
  m.kind = changes ? models::SnapshotKind::kDelta : models::SnapshotKind::kFull;
  m.base_version = changes ? version - 1 : 0;
  for (size_t t = 0; t < m.tables.size(); ++t) {
    const TableConfig& c = m.tables[t].config;
    const bool dense = c.kind == TableKind::kDense;
    m.tables[t].files = {RowFileRelativePath(c.name, 0)};
    fs::create_directories(fs::path(dir) / c.name);
    TESSERA_ASSIGN_OR_RETURN(
        auto w, RowFileWriter::Create((fs::path(dir) / m.tables[t].files[0]).string(),
                                      {.table_id = c.id,
                                       .kind = dense ? RowFileKind::kDense : RowFileKind::kSparse,
                                       .dim = dense ? 0 : c.dim,
                                       .state_floats = dense ? 0 : c.dim,
                                       .has_state = !dense,
                                       .is_delta = changes != nullptr && !dense,
                                       .table_size = c.size}));
    if (dense) {
      const std::vector<float>& v = p.dense[t - p.keys.size()];
      TESSERA_RETURN_IF_ERROR(w->AddRange(0, v.size(), 1, v, {}));
    } else {
      const auto row = [&](size_t r) {
        const float* at = p.rows[t].data() + r * c.dim * 2;
        return w->AddRow(p.keys[t][r], 1, 1700000000, {at, c.dim}, {at + c.dim, c.dim});
      };
      if (changes == nullptr) {
        for (size_t r = 0; r < p.keys[t].size(); ++r) TESSERA_RETURN_IF_ERROR(row(r));
      } else {
        for (size_t r : changes->rows[t]) TESSERA_RETURN_IF_ERROR(row(r));
        for (Key k : changes->deleted[t]) TESSERA_RETURN_IF_ERROR(w->AddDeletedKey(k));
      }
    }
    TESSERA_RETURN_IF_ERROR(w->Finish());
  }
  m.created_unix_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  m.created_unix_s = m.created_unix_ms / 1000;
  return models::WriteManifest(dir, m);
}

// Changes `rows` random rows per sparse table (1% of them also tombstoned:
// evicted and re-created) and every dense value.
Changes Mutate(Params* p, int rows) {
  Changes c;
  c.rows.resize(p->keys.size());
  c.deleted.resize(p->keys.size());
  for (size_t t = 0; t < p->keys.size(); ++t) {
    const uint32_t dim = p->base.tables[t].config.dim;
    absl::flat_hash_set<size_t> picked;
    while (picked.size() < std::min<size_t>(rows, p->keys[t].size())) {
      picked.insert(p->rng() % p->keys[t].size());
    }
    for (size_t r : picked) {
      RandomFill(p->rng, p->rows[t].data() + r * dim * 2, dim, 0.1f);
      c.rows[t].push_back(r);
      if (c.deleted[t].size() * 100 < c.rows[t].size()) c.deleted[t].push_back(p->keys[t][r]);
    }
    std::sort(c.rows[t].begin(), c.rows[t].end());
  }
  for (std::vector<float>& d : p->dense) {
    for (size_t i = 0; i < d.size(); i += 7) d[i] += 0.001f;
  }
  return c;
}

struct Latency {
  double p50_ms = 0, p99_ms = 0;
};

// Sends `body` one request at a time for `seconds` (at least 20 requests).
Latency Measure(serving::RestApi* api, const std::string& body, double seconds) {
  std::vector<double> ms;
  const auto end = Clock::now() + std::chrono::duration<double>(seconds);
  while (ms.size() < 20 || Clock::now() < end) {
    const auto start = Clock::now();
    const HttpResponse r = api->Handle({"POST", "/v1/models/bench:predict", body});
    ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - start).count());
    if (r.status != 200) std::cerr << "predict failed: " << r.body.substr(0, 200) << "\n";
  }
  std::sort(ms.begin(), ms.end());
  return {ms[ms.size() / 2], ms[std::min(ms.size() - 1, ms.size() * 99 / 100)]};
}

// The value of `series` in the Prometheus text of `metrics` (0 if absent).
double MetricValue(const MetricsRegistry& metrics, const std::string& series) {
  const std::string text = metrics.SerializeText();
  const size_t at = text.find(series + " ");
  return at == std::string::npos ? 0 : std::stod(text.substr(at + series.size() + 1));
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Publishes a delta every --delta-ms until destroyed.
class DeltaWriter {
 public:
  DeltaWriter(const std::string& dir, Params* p, uint64_t* latest, const Flags& f)
      : thread_([=, this] {
          while (!stop_.WaitForNotificationWithTimeout(absl::Milliseconds(f.delta_ms))) {
            const Changes c = Mutate(p, f.delta_rows);
            if (Status s = WriteVersion(dir, *latest + 1, *p, &c); !s.ok()) {
              std::cerr << "delta: " << s.message() << "\n";
              return;
            }
            ++*latest;
          }
        }) {}
  ~DeltaWriter() {
    stop_.Notify();
    thread_.join();
  }

 private:
  absl::Notification stop_;
  std::thread thread_;
};

int BenchModel(const Flags& f, const std::string& data_dir, const std::string& root,
               const std::string& type, const std::vector<json>& instances) {
  StatusOr<Params> made = MakeParams(data_dir, type, f.extra_rows);
  if (!made.ok()) return std::cerr << made.status().message() << "\n", 1;
  Params& p = *made;
  const std::string dir = root + "/" + type;
  fs::remove_all(dir);
  fs::create_directories(dir);
  uint64_t latest = 0;
  size_t rows = 0;
  for (const auto& k : p.keys) rows += k.size();
  MetricsRegistry metrics;
  serving::RestApiOptions api_options;
  api_options.name = "bench";
  serving::RestApi api(api_options, &metrics);
  // With --impressions 1, as `tessera serve --impression-dir`: every
  // scored instance goes to the event log's queue and writer thread.
  RealClock clock;
  std::unique_ptr<feedback::EventLogWriter> event_log;
  if (f.impressions) {
    feedback::EventLogWriterOptions log_options;
    log_options.dir = root + "/" + type + "-events";
    fs::remove_all(log_options.dir);
    auto opened = feedback::EventLogWriter::Open(log_options, &clock, &metrics);
    if (!opened.ok()) return std::cerr << opened.status().message() << "\n", 1;
    event_log = *std::move(opened);
  }
  serving::FeedbackService feedback_service({}, {"default"}, event_log.get(), &clock, &metrics);
  api.set_feedback(&feedback_service);
  serving::FollowerOptions fo;
  fo.publish_dir = dir;
  fo.poll_interval = std::chrono::milliseconds(f.poll_ms);
  const std::string one = json{{"instances", {instances[0]}}}.dump();
  const std::string hundred =
      json{{"instances", std::vector<json>(instances.begin(), instances.begin() + 100)}}.dump();
  std::map<std::string, std::vector<double>> results;
  int deltas = 0;
  double seconds = 0;  // measured with deltas
  for (int rep = 0; rep < f.reps; ++rep) {
    for (bool with_deltas : {false, true}) {
      // A fresh full snapshot per pass keeps the chain a new follower loads
      // short.
      if (Status s = WriteVersion(dir, ++latest, p, nullptr); !s.ok()) {
        return std::cerr << s.message() << "\n", 1;
      }
      serving::ModelFollower follower(fo, api.slot(0), &metrics);
      if (Status s = follower.PollOnce(); !s.ok()) return std::cerr << s.message() << "\n", 1;
      follower.Start();
      const auto start = Clock::now();
      const uint64_t first = follower.version();
      std::unique_ptr<DeltaWriter> writer;
      if (with_deltas) writer = std::make_unique<DeltaWriter>(dir, &p, &latest, f);
      const std::string tag = with_deltas ? "deltas" : "base";
      Measure(&api, one, 0);  // warm the model pool
      const Latency l1 = Measure(&api, one, f.seconds);
      const Latency l100 = Measure(&api, hundred, f.seconds);
      results[tag + "1p50"].push_back(l1.p50_ms);
      results[tag + "1p99"].push_back(l1.p99_ms);
      results[tag + "100p50"].push_back(l100.p50_ms);
      results[tag + "100p99"].push_back(l100.p99_ms);
      if (with_deltas) {
        deltas += static_cast<int>(follower.version() - first);  // applied while measuring
        seconds += std::chrono::duration<double>(Clock::now() - start).count();
      }
      writer.reset();
      follower.Stop();
    }
  }
  size_t dense = 0;
  for (const auto& d : p.dense) dense += d.size();
  if (event_log != nullptr) {
    event_log->Stop();
    std::printf("%s: impressions logged %.0f, dropped %.0f (queue full)\n", type.c_str(),
                MetricValue(metrics, "tessera_serving_event_log_records_total{kind=\"I\"}"),
                MetricValue(metrics,
                            "tessera_serving_event_log_dropped_total{reason=\"queue_full\"}"));
  }
  std::printf(
      "%s: %zu sparse rows, %zu dense floats; %d deltas of %d rows/table applied in %.1f s "
      "while measuring (%.1f/s)\n",
      type.c_str(), rows, dense, deltas, f.delta_rows, seconds, deltas / std::max(seconds, 1e-9));
  const std::string age = "tessera_serving_version_freshness_seconds";
  const double served = MetricValue(metrics, age + "_count{arm=\"default\"}");
  std::printf("  versions served %.0f ms after their manifest's created time, on average\n",
              1000 * MetricValue(metrics, age + "_sum{arm=\"default\"}") / std::max(served, 1.0));
  for (const char* n : {"1", "100"}) {
    const std::string k(n);
    std::printf("  %-3s instances  p50 %6.3f ms (baseline %6.3f)   p99 %6.3f ms (baseline %6.3f)\n",
                n, Median(results["deltas" + k + "p50"]), Median(results["base" + k + "p50"]),
                Median(results["deltas" + k + "p99"]), Median(results["base" + k + "p99"]));
  }
  return 0;
}

}  // namespace

int RunServingLatencyBench(const std::vector<std::string>& args) {
  Flags f;
  if (!ParseFlags(args, &f)) {
    std::cerr << "usage: serving_latency_bench [--models deepfm,din] [--seconds S] [--reps R] "
                 "[--extra-rows N] [--delta-ms MS] [--delta-rows N] [--poll-ms MS] [--dir DIR] [--impressions 0|1]\n";
    return 2;
  }
  std::string root = f.dir;
  if (root.empty()) {
    const fs::path base = fs::exists("/dev/shm") ? fs::path("/dev/shm") : fs::temp_directory_path();
    root = (base / absl::StrCat("tessera-serving-bench-", ::getpid())).string();
  }
  models::gen::GenOptions gen;
  gen.out = root + "/data";
  gen.rows = 20000;
  gen.seed = 3;
  if (StatusOr<models::gen::GenSummary> s = models::gen::Generate(gen); !s.ok()) {
    return std::cerr << s.status().message() << "\n", 1;
  }
  StatusOr<models::Schema> schema = models::Schema::Load(gen.out + "/schema.yaml");
  if (!schema.ok()) return std::cerr << schema.status().message() << "\n", 1;
  std::vector<json> instances;
  std::ifstream in(gen.out + "/test.tsv");
  for (std::string line; instances.size() < 100 && std::getline(in, line);) {
    instances.push_back(serving::testing::InstanceOfLine(*schema, line));
  }
  if (instances.size() < 100) return std::cerr << "too few test rows\n", 1;
  std::printf(
      "serving_latency_bench: in-process :predict (JSON in, JSON out), "
      "one request at a "
      "time; medians of %d repetitions; a delta every %d ms, follower "
      "polling every %d "
      "ms\n",
      f.reps, f.delta_ms, f.poll_ms);
  int rc = 0;
  for (const std::string& type : f.models) {
    rc = std::max(rc, BenchModel(f, gen.out, root, type, instances));
  }
  if (f.dir.empty()) fs::remove_all(root);
  return rc;
}

}  // namespace tessera::bench
