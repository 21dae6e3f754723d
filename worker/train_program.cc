#include "worker/train_program.h"

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/logging.h"
#include "worker/model_saver.h"
#include "worker/trainer.h"

namespace tessera::worker {
namespace {

constexpr auto kBarrierTimeout = std::chrono::hours(24);
constexpr auto kSaveTimeout = std::chrono::minutes(30);

std::string Num(const std::optional<double>& v) {
  if (!v) return "null";
  char buf[40];
  std::snprintf(buf, sizeof(buf), "%.6f", *v);
  return buf;
}

Status WriteFileAtomically(const std::string& path, const std::string& text) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << text;
    if (!out) return UnavailableError("cannot write " + tmp);
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) return UnavailableError("cannot rename " + tmp + ": " + ec.message());
  return OkStatus();
}

// The Bayes-optimal AUC written by `tessera gen` next to the eval file.
std::optional<double> BayesAuc(const std::string& eval_path) {
  std::ifstream in(std::filesystem::path(eval_path).parent_path() / "bayes.json");
  if (!in) return std::nullopt;
  std::stringstream text;
  text << in.rdbuf();
  const std::string s = text.str();
  const size_t pos = s.find("\"bayes_auc\"");
  if (pos == std::string::npos) return std::nullopt;
  const size_t colon = s.find(':', pos);
  if (colon == std::string::npos) return std::nullopt;
  try {
    return std::stod(s.substr(colon + 1));
  } catch (...) {  // std::stod's exceptions stop here
    return std::nullopt;
  }
}

struct ExampleSum {
  uint64_t examples = 0;
  int workers_lost = 0;  // ranks without a file: declared dead before they finished
};

// Sum of "examples" over <dir>/<rank>.json for every worker rank. Called
// after the last barrier, which waits for every worker still alive: a rank
// without a file died (each worker removes its file of an earlier run before
// the first barrier). A dead worker's examples are not in the sum; the
// examples themselves were handed to the others.
StatusOr<ExampleSum> SumExamples(const std::string& dir, int workers) {
  ExampleSum sum;
  for (int w = 0; w < workers; ++w) {
    const std::string path = dir + "/" + std::to_string(w) + ".json";
    if (!std::filesystem::exists(path)) {
      TESSERA_LOG(kWarning) << "worker/" << w << " left no example count (" << path
                            << "): it was lost during the job";
      ++sum.workers_lost;
      continue;
    }
    std::ifstream in(path);
    std::string key;
    uint64_t n = 0;
    char brace;
    if (!(in >> brace >> key >> n) || key != "\"examples\":") {
      return DataLossError("cannot read the example count of worker " + std::to_string(w) +
                           " from " + path);
    }
    sum.examples += n;
  }
  return sum;
}

}  // namespace

std::string EvalJson(const models::EvalMetrics& m) {
  return "{\"auc\": " + Num(m.auc) + ", \"logloss\": " + Num(m.logloss) + ", \"gauc\": " +
         Num(m.gauc) + ", \"calibration\": " + Num(m.calibration) +
         ", \"samples\": " + std::to_string(m.count) + "}";
}

Status RunTrainJob(WorkerNode& node, const models::JobConfig& job) {
  TESSERA_ASSIGN_OR_RETURN(std::unique_ptr<Trainer> trainer, Trainer::Create(job, &node));
  // Every worker leaves its count where worker 0 can add them up; one left
  // by an earlier run in this output_dir goes first.
  const std::string stats_dir = job.output_dir + "/workers";
  const std::string stats_file = stats_dir + "/" + std::to_string(node.id().rank) + ".json";
  std::error_code ignored;
  std::filesystem::remove(stats_file, ignored);
  // Start together, so the cluster's training time is measured from here.
  TESSERA_RETURN_IF_ERROR(
      node.member().Barrier(protocol::BarrierGroup::kWorkers, DeadlineIn(kBarrierTimeout)));
  const auto start = std::chrono::steady_clock::now();
  TESSERA_ASSIGN_OR_RETURN(TrainResult result, trainer->Run());
  TESSERA_RETURN_IF_ERROR(WriteFileAtomically(
      stats_file,
      "{\"examples\": " + std::to_string(result.examples) + ", \"steps\": " +
          std::to_string(result.steps) + ", \"seconds\": " + std::to_string(result.seconds) +
          "}\n"));
  TESSERA_RETURN_IF_ERROR(
      node.member().Barrier(protocol::BarrierGroup::kWorkers, DeadlineIn(kBarrierTimeout)));
  if (node.id().rank != 0) return OkStatus();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  TESSERA_ASSIGN_OR_RETURN(ExampleSum sum, SumExamples(stats_dir, node.num_workers()));
  const uint64_t examples = sum.examples;
  const std::string train_json =
      "{\"examples\": " + std::to_string(examples) + ", \"seconds\": " + std::to_string(seconds) +
      ", \"samples_per_s\": " + std::to_string(seconds > 0 ? examples / seconds : 0) +
      ", \"workers\": " + std::to_string(node.num_workers()) +
      ", \"workers_lost\": " + std::to_string(sum.workers_lost) + "}";
  TESSERA_RETURN_IF_ERROR(WriteFileAtomically(job.output_dir + "/train.json", train_json + "\n"));
  std::printf("train: %s\n", train_json.c_str());
  const std::string model_dir = job.output_dir + "/model";
  TESSERA_RETURN_IF_ERROR(SaveModel(node, job, trainer->schema(), trainer->model(), model_dir,
                                    DeadlineIn(kSaveTimeout)));
  std::printf("model: %s\n", model_dir.c_str());
  if (job.data.eval.empty()) return OkStatus();
  TESSERA_ASSIGN_OR_RETURN(models::EvalMetrics eval, trainer->Evaluate({job.data.eval}));
  const std::string json = EvalJson(eval);
  TESSERA_RETURN_IF_ERROR(WriteFileAtomically(job.output_dir + "/eval.json", json + "\n"));
  std::optional<double> bayes = BayesAuc(job.data.eval);
  std::printf("eval: %s\n", json.c_str());
  if (bayes && eval.auc) {
    std::printf("held-out AUC %.4f (Bayes-optimal %.4f for this data, %.1f%% of the way from 0.5)\n",
                *eval.auc, *bayes, 100.0 * (*eval.auc - 0.5) / (*bayes - 0.5));
  }
  std::fflush(stdout);
  return OkStatus();
}

}  // namespace tessera::worker
