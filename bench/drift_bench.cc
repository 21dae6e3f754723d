// `drift_bench`: on drifting data, a model trained once and frozen against
// continuous training (issue 8, "Monolith's Table 2, our way"). One run,
// real processes:
//   1. `tessera gen --windows W --drift P --item_drift Q` writes W
//      consecutive time windows of one drifting world (users' interests move
//      to other categories, items start and end trends), with each window's Bayes-optimal AUC (the planted probabilities) in
//      bayes.json: the ceiling;
//   2. `tessera train JOB` follows a directory (data.follow: true) and
//      publishes a full version every second (publish.interval_s 1,
//      full_every 1);
//   3. window w is dropped into the followed directory (written as .name,
//      then renamed), and the bench waits for the first version whose
//      training_state says window w is fully trained;
//   4. the version that has trained window 0 alone is copied aside: the
//      frozen model, never updated;
//   5. before window w + 1 is dropped, `tessera eval` scores it with the
//      frozen model and with the latest version (next-window evaluation:
//      neither has seen it).
// Prints AUC (and log loss) per window for both, side by side, the gain and
// the Bayes-optimal AUC; and, from window 2, the AUC of the version one
// window late (it has trained windows 0..w-1, not w): the continuous model's
// gain over it is what the newest window is worth (freshness), which a
// drifting world should raise over the no-drift control. Window 1 is scored by the same model twice (the
// continuous model has trained window 0 only), so the mean gain is given
// over windows 2..W-1 (and over 1..W-1).
//   6. the closed loop (tests/e2e/closed_loop.h), unless --loop-requests 0:
//      the last window is trained too, then `tessera serve` runs the frozen
//      model and the job's publish directory as A/B arms, `tessera join`
//      feeds the job, and `tessera simulate` sends shoppers who continue the
//      world after the last window. Prints CTR per tenth of the visits for
//      both arms (and the planted CTR of what each showed), and the
//      second half's gain with its z-test.
//
// Flags ("--flag=V" or "--flag V"):
//   --tessera PATH     the binary (default $TESSERA_BIN, else
//                      ../tools/tessera next to this executable)
//   --windows N        time windows (default 8)
//   --rows N           rows per window (default 100000)
//   --drift P          gen's interest drift per impression (default 0.05)
//   --item-drift P     gen's item drift (trends) per impression (default 0.02)
//   --loop-requests N  the closed loop's visits (default 6000; 0: no loop)
//   --loop-rate R      its visits per second (default 250)
//   --users N, --items N  gen's world (default 5000, 20000)
//   --seed N           gen's seed (default 7)
//   --model TYPE       model.type (default deepfm)
//   --keep             keep the temp directory (printed)
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <regex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench/bench_flags.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "bench/bench_util.h"
#include "models/model_versions.h"
#include "serving/feedback/ab_stats.h"
#include "tests/e2e/closed_loop.h"
#include "tests/e2e/process_util.h"
#include "tests/e2e/publish_util.h"

namespace tessera::bench {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::ReadFileOrEmpty;

struct Flags {
  std::string tessera;
  int windows = 8, rows = 100000, users = 5000, items = 20000, seed = 7;
  double drift = 0.05, item_drift = 0.02;
  int loop_requests = 6000;
  double loop_rate = 250;
  std::string model = "deepfm";
  bool keep = false;
};

bool ParseFlags(const std::vector<std::string>& args, Flags* f) {
  if (!ParseBenchFlags(args, {.ints = {{"--windows", &f->windows},
                                       {"--rows", &f->rows},
                                       {"--users", &f->users},
                                       {"--items", &f->items},
                                       {"--seed", &f->seed},
                                       {"--loop-requests", &f->loop_requests}},
                              .doubles = {{"--drift", &f->drift},
                                          {"--item-drift", &f->item_drift},
                                          {"--loop-rate", &f->loop_rate}},
                              .strings = {{"--tessera", &f->tessera}, {"--model", &f->model}},
                              .keep = &f->keep})) {
    return false;
  }
  return f->windows >= 3 && f->rows > 0 && f->loop_requests >= 0 && f->loop_rate > 0 &&
         f->item_drift >= 0 && f->item_drift <= 1;
}

// Runs `argv` to completion (log in `log`); true if it exited 0.
bool RunToEnd(const std::vector<std::string>& argv, const std::string& log,
              std::chrono::seconds timeout) {
  if (testing::RunToExit(argv, log, timeout) == 0) return true;
  std::cerr << argv[1] << " failed:\n" << ReadFileOrEmpty(log);
  return false;
}

struct Score {
  double auc = std::nan(""), logloss = std::nan("");
};

// `tessera eval --model MODEL --data DATA`: its AUC and log loss.
std::optional<Score> Eval(const Flags& f, const std::string& model, const std::string& data,
                          const std::string& log) {
  fs::remove(log);
  if (!RunToEnd({f.tessera, "eval", "--model", model, "--data", data}, log,
                std::chrono::seconds(300))) {
    return std::nullopt;
  }
  static const std::regex re(R"(auc ([0-9.]+), logloss ([0-9.]+))");
  const std::string text = ReadFileOrEmpty(log);
  std::smatch m;
  if (!std::regex_search(text, m, re)) {
    std::cerr << "no auc in the eval output:\n" << text;
    return std::nullopt;
  }
  return Score{std::stod(m[1]), std::stod(m[2])};
}

void WriteJob(const Flags& f, const std::string& root) {
  std::ofstream job(root + "/job.yaml");
  job << "data: {schema: '" << root << "/data/schema.yaml', train: '" << root
      << "/incoming/', follow: true}\n"
      << "model: {type: " << f.model << "}\n"
      << "cluster: {servers: 1, workers: 1}\n"
      << "publish: {model_dir: '" << root << "/pub', interval_s: 1, full_every: 1, keep: 1000}\n"
      << "join: {impression_dir: '" << root
      << "/events', window_s: 1, grace_s: 0.5, commit_interval_ms: 200}\n"
      << "output_dir: '" << root << "/out'\n";
}

struct Row {
  int window = 0;
  Score frozen, continuous;
  Score late;  // the version that trained windows 0..w-1 (one window late), from window 2
  double bayes_auc = std::nan("");
  uint64_t version = 0;
};

// Drops window w into the followed directory (as 0-window-<wwww>.tsv: name
// order is time order, before the joiner's join-*.tsv) and waits for the
// first version that has trained it; nullopt on a failure (printed).
std::optional<uint64_t> DropWindow(const std::string& root, int w, pid_t train) {
  const std::string name = absl::StrFormat("0-window-%04d.tsv", w);
  fs::copy_file(absl::StrCat(root, "/data/window-", w, ".tsv"), root + "/incoming/." + name);
  fs::rename(root + "/incoming/." + name, root + "/incoming/" + name);
  const std::optional<uint64_t> v =
      testing::WaitForVersionTrainedFile(root + "/pub", name, train, std::chrono::seconds(300));
  if (!v) std::cerr << "no version trained " << name << ":\n" << ReadFileOrEmpty(root + "/train.log");
  return v;
}

// Drops the windows one by one into the followed directory and scores the
// next one; false on a failure (printed).
bool RunWindows(const Flags& f, const std::string& root, pid_t train,
                const std::vector<double>& bayes, std::vector<Row>* rows) {
  const std::string pub = root + "/pub", frozen = root + "/frozen";
  std::optional<uint64_t> previous;
  for (int w = 0; w + 1 < f.windows; ++w) {
    const std::optional<uint64_t> v = DropWindow(root, w, train);
    if (!v) return false;
    if (w == 0) fs::copy(models::VersionDir(pub, *v), frozen, fs::copy_options::recursive);
    const std::string next = absl::StrCat(root, "/data/window-", w + 1, ".tsv");
    Row row;
    row.window = w + 1;
    row.version = *v;
    std::optional<Score> a = Eval(f, frozen, next, root + "/eval.log");
    std::optional<Score> b = Eval(f, models::VersionDir(pub, *v), next, root + "/eval.log");
    if (!a || !b) return false;
    row.frozen = *a;
    row.continuous = *b;
    if (previous) {
      std::optional<Score> c = Eval(f, models::VersionDir(pub, *previous), next, root + "/eval.log");
      if (!c) return false;
      row.late = *c;
    }
    previous = v;
    if (static_cast<size_t>(w + 1) < bayes.size()) row.bayes_auc = bayes[w + 1];
    std::fprintf(stderr, "  window %d: frozen %.4f, continuous %.4f (version %llu)\n", w + 1,
                 a->auc, b->auc, static_cast<unsigned long long>(*v));
    rows->push_back(row);
  }
  return true;
}

void PrintTable(const Flags& f, const std::vector<Row>& rows, double seconds) {
  std::printf(
      "drift_bench: %d windows x %d rows, drift %g, item drift %g, %d users, %d items, seed %d, model %s, "
      "1 server x 1 worker, publish every 1 s; next-window evaluation\n",
      f.windows, f.rows, f.drift, f.item_drift, f.users, f.items, f.seed, f.model.c_str());
  std::printf("| window | frozen AUC | continuous AUC | gain | 1 window late AUC | freshness gain | "
              "frozen logloss | continuous logloss | Bayes AUC |\n"
              "|---|---|---|---|---|---|---|---|---|\n");
  double gain_all = 0, gain_later = 0, fresh_later = 0;
  int later = 0;
  for (const Row& r : rows) {
    const double gain = r.continuous.auc - r.frozen.auc;
    const double fresh = r.continuous.auc - r.late.auc;
    std::printf("| %d | %.4f | %.4f | %+.4f | %.4f | %+.4f | %.4f | %.4f | %.4f |\n", r.window,
                r.frozen.auc, r.continuous.auc, gain, r.late.auc, fresh, r.frozen.logloss,
                r.continuous.logloss, r.bayes_auc);
    gain_all += gain;
    if (r.window >= 2) {
      gain_later += gain;
      fresh_later += fresh;
      ++later;
    }
  }
  std::printf("mean freshness gain (continuous over the same job one window late, which has "
              "trained all but the newest window): %+.4f over windows 2..%d\n",
              later > 0 ? fresh_later / later : 0.0, f.windows - 1);
  std::printf("mean AUC gain of continuous over frozen: %+.4f over windows 2..%d (%+.4f over 1..%d; "
              "window 1 is the same model twice); %.0f s\n",
              later > 0 ? gain_later / later : 0.0, f.windows - 1,
              rows.empty() ? 0.0 : gain_all / static_cast<double>(rows.size()), f.windows - 1,
              seconds);
}

constexpr int kLoopReports = 10;  // the closed loop's report windows

// The closed loop after the last window: the frozen model and the job's
// publish directory as two serve arms, the joiner feeding the job, and
// simulate's shoppers continuing the world where the generated windows end.
// Prints CTR per report window, side by side; false on a failure (printed).
bool RunLoop(const Flags& f, const std::string& root, pid_t train) {
  if (!DropWindow(root, f.windows - 1, train)) return false;
  const testing::ClosedLoopResult loop = testing::RunClosedLoop(
      {.tessera = f.tessera,
       .job = root + "/job.yaml",
       .frozen_model = root + "/frozen",
       .publish_dir = root + "/pub",
       .events_dir = root + "/events",
       .log_dir = root,
       .world = {"--users", std::to_string(f.users), "--items", std::to_string(f.items), "--seed",
                 std::to_string(f.seed), "--drift", absl::StrCat(f.drift), "--item-drift",
                 absl::StrCat(f.item_drift), "--after-rows",
                 std::to_string(static_cast<int64_t>(f.rows) * f.windows)},
       .requests = f.loop_requests,
       .reports = kLoopReports,
       .rate = f.loop_rate});
  if (loop.simulate_exit != 0 || loop.windows.empty()) {
    std::cerr << "the closed loop failed (simulate exit " << loop.simulate_exit << "):\n"
              << loop.simulate_output << ReadFileOrEmpty(root + "/serve.log");
    return false;
  }
  std::printf("\nclosed loop: %d visits at %g/s after the last window (simulate --after-rows), arms "
              "50/50 in one serve; the joiner feeds the job, so the continuous arm also learns "
              "from the loop\n",
              f.loop_requests, f.loop_rate);
  std::printf("| visits | frozen CTR | continuous CTR | gain | frozen planted | continuous planted |\n"
              "|---|---|---|---|---|---|\n");
  const int per = std::max(1, f.loop_requests / kLoopReports);
  for (size_t w = 0; w < loop.windows.size(); ++w) {
    const auto& arms = loop.windows[w];
    const testing::ArmCounts a = arms.contains("frozen") ? arms.at("frozen") : testing::ArmCounts{};
    const testing::ArmCounts b =
        arms.contains("continuous") ? arms.at("continuous") : testing::ArmCounts{};
    std::printf("| %zu-%zu | %.4f | %.4f | %+.4f | %.4f | %.4f |\n", w * per + 1, (w + 1) * per,
                a.Ctr(), b.Ctr(), b.Ctr() - a.Ctr(), a.planted, b.planted);
  }
  const auto late = loop.Sum(loop.windows.size() / 2, loop.windows.size());
  if (late.contains("frozen") && late.contains("continuous")) {
    const testing::ArmCounts& a = late.at("frozen");
    const testing::ArmCounts& b = late.at("continuous");
    const feedback::ZTest t = feedback::TwoProportionZTest(b.clicks, b.shown, a.clicks, a.shown);
    std::printf("second half: frozen CTR %.4f on %llu shown, continuous %.4f on %llu: gain %+.4f "
                "(%+.1f%%), z %.2f, p %.2g\n",
                a.Ctr(), static_cast<unsigned long long>(a.shown), b.Ctr(),
                static_cast<unsigned long long>(b.shown), b.Ctr() - a.Ctr(),
                100 * (b.Ctr() / std::max(1e-9, a.Ctr()) - 1), t.z, t.p_value);
  }
  return loop.join_exit == 0 && loop.serve_exit == 0;
}

int RunDriftBench(const std::vector<std::string>& args) {
  Flags f;
  if (!ParseFlags(args, &f)) {
    std::cerr << "usage: drift_bench [--windows N (>= 3)] [--rows N] [--drift P] [--item-drift P] "
                 "[--users N] [--items N] [--seed N] [--model TYPE] [--loop-requests N (0: no "
                 "loop)] [--loop-rate R] [--tessera PATH] [--keep]\n";
    return 2;
  }
  if (f.tessera.empty()) f.tessera = DefaultTesseraBinary();
  const auto start = std::chrono::steady_clock::now();
  char tmpl[] = "/tmp/drift_bench.XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) return 1;
  const std::string root = tmpl;
  fs::create_directories(root + "/incoming");
  if (!RunToEnd({f.tessera, "gen", "--out", root + "/data", "--windows", std::to_string(f.windows),
                 "--rows", std::to_string(static_cast<int64_t>(f.rows) * f.windows), "--drift",
                 absl::StrCat(f.drift), "--item_drift", absl::StrCat(f.item_drift), "--users", std::to_string(f.users), "--items",
                 std::to_string(f.items), "--seed", std::to_string(f.seed)},
                root + "/gen.log", std::chrono::seconds(300))) {
    return 1;
  }
  std::vector<double> bayes;
  const json doc = json::parse(ReadFileOrEmpty(root + "/data/bayes.json"), nullptr, false);
  if (doc.is_object() && doc.contains("windows")) {
    for (const json& w : doc["windows"]) bayes.push_back(w.value("bayes_auc", std::nan("")));
  }
  WriteJob(f, root);
  const pid_t train = testing::Spawn({f.tessera, "train", root + "/job.yaml"}, root + "/train.log");
  std::vector<Row> rows;
  bool ok = RunWindows(f, root, train, bayes, &rows);
  if (ok) PrintTable(f, rows, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  if (ok && f.loop_requests > 0) ok = RunLoop(f, root, train);
  ::kill(train, SIGTERM);
  if (!testing::WaitForExit(train, std::chrono::seconds(120))) {
    ::kill(train, SIGKILL);
    testing::WaitForExit(train, std::chrono::seconds(10));
  }
  if (f.keep || !ok) {
    std::cerr << "kept " << root << "\n";
  } else {
    fs::remove_all(root);
  }
  return ok ? 0 : 1;
}

}  // namespace
}  // namespace tessera::bench

int main(int argc, char** argv) {
  return tessera::bench::RunDriftBench(std::vector<std::string>(argv + 1, argv + argc));
}
