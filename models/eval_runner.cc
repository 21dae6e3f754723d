#include "models/eval_runner.h"

#include <chrono>
#include <cstdio>
#include <memory>
#include <optional>

#include <nlohmann/json.hpp>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "models/batch_builder.h"
#include "models/model.h"
#include "models/saved_model.h"

namespace tessera::models {
namespace {

// Streams "label\tprediction" lines to "<path>.tmp"; Finish renames it.
class PredictionsWriter {
 public:
  static StatusOr<std::unique_ptr<PredictionsWriter>> Open(const std::string& path) {
    const std::string tmp = path + ".tmp";
    std::FILE* f = std::fopen(tmp.c_str(), "w");
    if (f == nullptr) return UnavailableError(absl::StrCat(tmp, ": cannot be written"));
    return std::unique_ptr<PredictionsWriter>(new PredictionsWriter(path, f));
  }
  ~PredictionsWriter() {
    if (file_ != nullptr) std::fclose(file_);
    if (!finished_) std::remove((path_ + ".tmp").c_str());
  }

  void Add(std::span<const float> labels, std::span<const float> predictions) {
    for (size_t i = 0; i < predictions.size(); ++i) {
      std::fprintf(file_, "%d\t%.9g\n", labels[i] > 0.5f ? 1 : 0, predictions[i]);
    }
  }
  Status Finish() {
    const bool write_error = std::ferror(file_) != 0;
    const bool close_error = std::fclose(file_) != 0;
    file_ = nullptr;
    const std::string tmp = path_ + ".tmp";
    if (write_error || close_error || std::rename(tmp.c_str(), path_.c_str()) != 0) {
      return UnavailableError(absl::StrCat(path_, ": writing the predictions failed"));
    }
    finished_ = true;
    return OkStatus();
  }

 private:
  PredictionsWriter(std::string path, std::FILE* file) : path_(std::move(path)), file_(file) {}
  const std::string path_;
  std::FILE* file_;
  bool finished_ = false;
};

std::string Metric(const std::optional<double>& v) {
  return v ? absl::StrFormat("%.4f", *v) : std::string("n/a");
}
nlohmann::json JsonMetric(const std::optional<double>& v) {
  return v ? nlohmann::json(*v) : nlohmann::json(nullptr);
}

}  // namespace

StatusOr<EvalReport> EvaluateSavedModel(const std::string& model_dir,
                                        const std::vector<std::string>& data,
                                        const EvalOptions& options) {
  if (options.batch_size < 1) return InvalidArgumentError("eval: batch size must be >= 1");
  const auto start = std::chrono::steady_clock::now();
  TESSERA_ASSIGN_OR_RETURN(const SavedModel saved, LoadSavedModel(model_dir, /*with_state=*/false));
  TESSERA_ASSIGN_OR_RETURN(std::unique_ptr<Model> model,
                           NewModel(saved.manifest.model, saved.schema));
  EvalReport report;
  report.model_dir = model_dir;
  report.group_field = options.group_field.empty()    ? saved.manifest.group_field
                       : options.group_field == "none" ? ""
                                                       : options.group_field;
  TESSERA_ASSIGN_OR_RETURN(std::vector<std::string> files, ExpandInputs(data));
  TESSERA_ASSIGN_OR_RETURN(std::vector<FileChunk> chunks, SplitIntoChunks(files, 0));
  ExampleReader reader(&saved.schema, chunks, {});
  TESSERA_ASSIGN_OR_RETURN(std::unique_ptr<BatchBuilder> builder,
                           BatchBuilder::Create(&saved.schema, {.group_field = report.group_field}));
  std::unique_ptr<PredictionsWriter> out;
  if (!options.predictions_path.empty()) {
    TESSERA_ASSIGN_OR_RETURN(out, PredictionsWriter::Open(options.predictions_path));
  }
  Batch batch;
  std::vector<float> batch_predictions, predictions, labels;
  std::vector<uint64_t> groups;
  while (true) {
    TESSERA_ASSIGN_OR_RETURN(int n, reader.NextBatch(builder.get(), &batch, options.batch_size));
    if (n == 0) break;
    TESSERA_ASSIGN_OR_RETURN(std::vector<std::span<const float>> dense, FillBatch(saved, &batch));
    batch_predictions.resize(n);
    model->Predict(batch, dense, batch_predictions);
    if (out) out->Add(batch.labels, batch_predictions);
    predictions.insert(predictions.end(), batch_predictions.begin(), batch_predictions.end());
    labels.insert(labels.end(), batch.labels.begin(), batch.labels.end());
    groups.insert(groups.end(), batch.groups.begin(), batch.groups.end());
  }
  TESSERA_RETURN_IF_ERROR(CheckBadRatio(reader.stats(), options.max_bad_ratio));
  if (out) TESSERA_RETURN_IF_ERROR(out->Finish());
  if (groups.size() != predictions.size()) groups.clear();
  report.metrics = Evaluate(predictions, labels, groups);
  report.data = reader.stats();
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return report;
}

std::string EvalReportLine(const EvalReport& r) {
  const EvalMetrics& m = r.metrics;
  return absl::StrFormat(
      "eval: %d examples, auc %s, logloss %s, gauc %s, calibration %s, ctr %.4f (%s, %.2f s)\n",
      m.count, Metric(m.auc), Metric(m.logloss), Metric(m.gauc), Metric(m.calibration), m.ctr,
      r.model_dir, r.seconds);
}

std::string EvalReportJson(const EvalReport& r) {
  const EvalMetrics& m = r.metrics;
  const nlohmann::json doc{{"model", r.model_dir},
                           {"samples", m.count},
                           {"ctr", m.ctr},
                           {"auc", JsonMetric(m.auc)},
                           {"logloss", JsonMetric(m.logloss)},
                           {"gauc", JsonMetric(m.gauc)},
                           {"calibration", JsonMetric(m.calibration)},
                           {"group_field", r.group_field},
                           {"lines", r.data.lines},
                           {"bad_lines", r.data.bad_lines},
                           {"seconds", r.seconds}};
  return doc.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

std::string EvalUsage() {
  return "usage: tessera eval --model DIR --data FILE... [--predictions PATH]\n"
         "                    [--batch-size N] [--group-field NAME|none] [--max-bad-ratio F]\n"
         "Scores FILE... (files, globs, directories) with the saved model in DIR\n"
         "(<output_dir>/model) and prints AUC, log loss, GAUC and calibration.\n"
         "  --predictions PATH  also write one \"label<TAB>prediction\" line per example\n"
         "  --batch-size N      examples per batch (default 1024)\n"
         "  --group-field NAME  GAUC groups (default: the training job's; none: no GAUC)\n"
         "  --max-bad-ratio F   fail above this fraction of malformed lines (default 0.01)\n";
}

Status RunEval(const std::vector<std::string>& args) {
  std::string model_dir;
  std::vector<std::string> data;
  EvalOptions options;
  for (size_t i = 0; i < args.size(); ++i) {
    std::string flag = args[i];
    if (flag == "--help" || flag == "-h") {
      std::fputs(EvalUsage().c_str(), stdout);
      return OkStatus();
    }
    if (flag.rfind("--", 0) != 0) {
      return InvalidArgumentError(absl::StrCat("eval: unexpected argument '", flag, "'\n", EvalUsage()));
    }
    std::vector<std::string> values;
    if (const size_t eq = flag.find('='); eq != std::string::npos) {
      values.push_back(flag.substr(eq + 1));
      flag.resize(eq);
    }
    while (i + 1 < args.size() && args[i + 1].rfind("--", 0) != 0 &&
           (values.empty() || flag == "--data")) {
      values.push_back(args[++i]);
    }
    if (values.empty() || (values.size() > 1 && flag != "--data")) {
      return InvalidArgumentError(absl::StrCat("eval: ", flag, " needs one value"));
    }
    const std::string& v = values[0];
    bool ok = true;
    if (flag == "--model") {
      model_dir = v;
    } else if (flag == "--data") {
      data.insert(data.end(), values.begin(), values.end());
    } else if (flag == "--predictions") {
      options.predictions_path = v;
    } else if (flag == "--group-field") {
      options.group_field = v;
    } else if (flag == "--batch-size") {
      ok = absl::SimpleAtoi(v, &options.batch_size) && options.batch_size >= 1;
    } else if (flag == "--max-bad-ratio") {
      ok = absl::SimpleAtod(v, &options.max_bad_ratio) && options.max_bad_ratio >= 0;
    } else {
      return InvalidArgumentError(absl::StrCat("eval: unknown flag ", flag, "\n", EvalUsage()));
    }
    if (!ok) return InvalidArgumentError(absl::StrCat("eval: ", flag, ": bad value '", v, "'"));
  }
  if (model_dir.empty() || data.empty()) {
    return InvalidArgumentError("eval: --model and --data are required\n" + EvalUsage());
  }
  TESSERA_ASSIGN_OR_RETURN(EvalReport report, EvaluateSavedModel(model_dir, data, options));
  std::fputs(EvalReportLine(report).c_str(), stdout);
  std::fputs(EvalReportJson(report).c_str(), stdout);
  std::fflush(stdout);
  return OkStatus();
}

}  // namespace tessera::models
