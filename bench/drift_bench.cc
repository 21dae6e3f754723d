// `drift_bench`: on drifting data, a model trained once and frozen against
// continuous training (issue 8, "Monolith's Table 2, our way"). One run,
// real processes:
//   1. `tessera gen --windows W --drift P` writes W consecutive time windows
//      of one drifting world (users' interests move to other categories),
//      with each window's Bayes-optimal AUC (the planted probabilities) in
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
// the Bayes-optimal AUC. Window 1 is scored by the same model twice (the
// continuous model has trained window 0 only), so the mean gain is given
// over windows 2..W-1 (and over 1..W-1).
//
// Flags ("--flag=V" or "--flag V"):
//   --tessera PATH     the binary (default $TESSERA_BIN, else
//                      ../tools/tessera next to this executable)
//   --windows N        time windows (default 8)
//   --rows N           rows per window (default 100000)
//   --drift P          gen's interest drift per impression (default 0.05)
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
#include "bench/bench_util.h"
#include "models/model_versions.h"
#include "tests/e2e/process_util.h"

namespace tessera::bench {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::ReadFileOrEmpty;

struct Flags {
  std::string tessera;
  int windows = 8, rows = 100000, users = 5000, items = 20000, seed = 7;
  double drift = 0.05;
  std::string model = "deepfm";
  bool keep = false;
};

bool ParseFlags(const std::vector<std::string>& args, Flags* f) {
  if (!ParseBenchFlags(args, {.ints = {{"--windows", &f->windows},
                                       {"--rows", &f->rows},
                                       {"--users", &f->users},
                                       {"--items", &f->items},
                                       {"--seed", &f->seed}},
                              .doubles = {{"--drift", &f->drift}},
                              .strings = {{"--tessera", &f->tessera}, {"--model", &f->model}},
                              .keep = &f->keep})) {
    return false;
  }
  return f->windows >= 3 && f->rows > 0;
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

// True if version `v` of `pub` has fully trained the followed file `name`.
// Its manifest's training_state.data (scheduler/data_assigner.h): the
// followed files are taken in name order and the watermark names the last
// one taken; a file with chunks still open is listed in "chunks" and, not
// yet trained, in "stream_files". The bench drops one file at a time, so
// `name` is trained once it is the watermark with nothing open.
bool VersionTrained(const std::string& pub, uint64_t v, const std::string& name) {
  const json manifest =
      json::parse(ReadFileOrEmpty(models::VersionDir(pub, v) + "/manifest.json"), nullptr, false);
  if (!manifest.is_object() || !manifest.contains("training_state")) return false;
  const json& state = manifest["training_state"];
  if (!state.is_object() || !state.contains("data")) return false;
  const json& data = state["data"];
  if (!data.is_object()) return false;
  const auto is_name = [&](const json& j) {
    return j.is_string() && fs::path(j.get<std::string>()).filename().string() == name;
  };
  if (!is_name(data.value("watermark", json()))) return false;
  for (const json& chunk : data.value("chunks", json::array())) {
    if (chunk.is_object() && is_name(chunk.value("path", json()))) return false;
  }
  for (const json& file : data.value("stream_files", json::array())) {
    if (file.is_object() && is_name(file.value("path", json())) && !file.value("trained", false)) {
      return false;
    }
  }
  return true;
}

// The first version that has trained `name` (polls; nullopt after 300 s or
// if training exits).
std::optional<uint64_t> WaitTrained(const std::string& pub, const std::string& name, pid_t train) {
  std::optional<uint64_t> found;
  testing::PollUntil(
      [&] {
        if (!testing::ProcessAlive(train)) return true;
        auto versions = models::ListVersionNumbers(pub);
        if (!versions.ok() || versions->empty()) return false;
        if (VersionTrained(pub, versions->back(), name)) found = versions->back();
        return found.has_value();
      },
      std::chrono::seconds(300));
  return found;
}

void WriteJob(const Flags& f, const std::string& root) {
  std::ofstream job(root + "/job.yaml");
  job << "data: {schema: '" << root << "/data/schema.yaml', train: '" << root
      << "/incoming/', follow: true}\n"
      << "model: {type: " << f.model << "}\n"
      << "cluster: {servers: 1, workers: 1}\n"
      << "publish: {model_dir: '" << root << "/pub', interval_s: 1, full_every: 1, keep: 1000}\n"
      << "output_dir: '" << root << "/out'\n";
}

struct Row {
  int window = 0;
  Score frozen, continuous;
  double bayes_auc = std::nan("");
  uint64_t version = 0;
};

// Drops the windows one by one into the followed directory and scores the
// next one; false on a failure (printed).
bool RunWindows(const Flags& f, const std::string& root, pid_t train,
                const std::vector<double>& bayes, std::vector<Row>* rows) {
  const std::string pub = root + "/pub", frozen = root + "/frozen";
  for (int w = 0; w + 1 < f.windows; ++w) {
    const std::string name = absl::StrCat("window-", w, ".tsv");
    fs::copy_file(root + "/data/" + name, root + "/incoming/." + name);
    fs::rename(root + "/incoming/." + name, root + "/incoming/" + name);
    const std::optional<uint64_t> v = WaitTrained(pub, name, train);
    if (!v) {
      std::cerr << "no version trained " << name << ":\n" << ReadFileOrEmpty(root + "/train.log");
      return false;
    }
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
    if (static_cast<size_t>(w + 1) < bayes.size()) row.bayes_auc = bayes[w + 1];
    std::fprintf(stderr, "  window %d: frozen %.4f, continuous %.4f (version %llu)\n", w + 1,
                 a->auc, b->auc, static_cast<unsigned long long>(*v));
    rows->push_back(row);
  }
  return true;
}

void PrintTable(const Flags& f, const std::vector<Row>& rows, double seconds) {
  std::printf(
      "drift_bench: %d windows x %d rows, drift %g, %d users, %d items, seed %d, model %s, "
      "1 server x 1 worker, publish every 1 s; next-window evaluation\n",
      f.windows, f.rows, f.drift, f.users, f.items, f.seed, f.model.c_str());
  std::printf("| window | frozen AUC | continuous AUC | gain | frozen logloss | continuous logloss | "
              "Bayes AUC |\n|---|---|---|---|---|---|---|\n");
  double gain_all = 0, gain_later = 0;
  int later = 0;
  for (const Row& r : rows) {
    const double gain = r.continuous.auc - r.frozen.auc;
    std::printf("| %d | %.4f | %.4f | %+.4f | %.4f | %.4f | %.4f |\n", r.window, r.frozen.auc,
                r.continuous.auc, gain, r.frozen.logloss, r.continuous.logloss, r.bayes_auc);
    gain_all += gain;
    if (r.window >= 2) {
      gain_later += gain;
      ++later;
    }
  }
  std::printf("mean AUC gain of continuous over frozen: %+.4f over windows 2..%d (%+.4f over 1..%d; "
              "window 1 is the same model twice); %.0f s\n",
              later > 0 ? gain_later / later : 0.0, f.windows - 1,
              rows.empty() ? 0.0 : gain_all / static_cast<double>(rows.size()), f.windows - 1,
              seconds);
}

int RunDriftBench(const std::vector<std::string>& args) {
  Flags f;
  if (!ParseFlags(args, &f)) {
    std::cerr << "usage: drift_bench [--windows N (>= 3)] [--rows N] [--drift P] [--users N] "
                 "[--items N] [--seed N] [--model TYPE] [--tessera PATH] [--keep]\n";
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
                 absl::StrCat(f.drift), "--users", std::to_string(f.users), "--items",
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
  const bool ok = RunWindows(f, root, train, bayes, &rows);
  ::kill(train, SIGTERM);
  if (!testing::WaitForExit(train, std::chrono::seconds(120))) {
    ::kill(train, SIGKILL);
    testing::WaitForExit(train, std::chrono::seconds(10));
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (ok) PrintTable(f, rows, seconds);
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
