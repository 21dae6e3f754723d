#include "models/eval_runner.h"

#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string_view>
#include <utility>

#include <nlohmann/json.hpp>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "models/batch_builder.h"
#include "models/explanation_json.h"
#include "models/model.h"
#include "models/model_versions.h"
#include "models/saved_model.h"

namespace tessera::models {
namespace {

// A file written as "<path>.tmp" and renamed to `path` by Finish, so
// readers never see a partial file; removed if destroyed unfinished.
class AtomicFile {
 public:
  // `what` names the contents in errors ("predictions").
  static StatusOr<std::unique_ptr<AtomicFile>> Open(const std::string& path, std::string what) {
    const std::string tmp = path + ".tmp";
    std::FILE* f = std::fopen(tmp.c_str(), "w");
    if (f == nullptr) return UnavailableError(absl::StrCat(tmp, ": cannot be written"));
    return std::unique_ptr<AtomicFile>(new AtomicFile(path, std::move(what), f));
  }
  ~AtomicFile() {
    if (file_ != nullptr) std::fclose(file_);
    if (!finished_) std::remove((path_ + ".tmp").c_str());
  }

  std::FILE* get() const { return file_; }

  Status Finish() {
    const bool write_error = std::ferror(file_) != 0;
    const bool close_error = std::fclose(file_) != 0;
    file_ = nullptr;
    const std::string tmp = path_ + ".tmp";
    if (write_error || close_error || std::rename(tmp.c_str(), path_.c_str()) != 0) {
      return UnavailableError(absl::StrCat(path_, ": writing the ", what_, " failed"));
    }
    finished_ = true;
    return OkStatus();
  }

 private:
  AtomicFile(std::string path, std::string what, std::FILE* file)
      : path_(std::move(path)), what_(std::move(what)), file_(file) {}
  const std::string path_;
  const std::string what_;
  std::FILE* file_;
  bool finished_ = false;
};

// "label\tprediction" lines.
void WritePredictions(std::FILE* file, std::span<const float> labels,
                      std::span<const float> predictions) {
  for (size_t i = 0; i < predictions.size(); ++i) {
    std::fprintf(file, "%d\t%.9g\n", labels[i] > 0.5f ? 1 : 0, predictions[i]);
  }
}

// Reads batches like ExampleReader::NextBatch, keeping where the first
// `limit` examples came from, and writes their ExplanationJson lines.
class Explainer {
 public:
  // Unimplemented (naming the model type) if the model cannot explain
  // itself: asks it to explain an empty batch.
  static StatusOr<std::unique_ptr<Explainer>> Open(const EvalOptions& options,
                                                   const SavedModel& saved, Model* model,
                                                   BatchBuilder* builder) {
    Batch empty;
    builder->Start(&empty);
    builder->Finish();
    TESSERA_ASSIGN_OR_RETURN(std::vector<std::span<const float>> dense, FillBatch(saved, &empty));
    std::vector<Explanation> explanations;
    if (Status s = model->Explain(empty, dense, &explanations); !s.ok()) {
      return Status(s.code(),
                    absl::StrCat("eval --explain: model type '", saved.manifest.model.type,
                                 "' cannot explain its predictions: ", s.message()));
    }
    TESSERA_ASSIGN_OR_RETURN(std::unique_ptr<AtomicFile> file,
                             AtomicFile::Open(options.explain_path, "explanations"));
    return std::unique_ptr<Explainer>(
        new Explainer(&saved.schema, model, std::move(file), options.explain_limit));
  }

  // ExampleReader::NextBatch, recording the sources of the examples still
  // to be explained.
  StatusOr<int> NextBatch(ExampleReader* reader, BatchBuilder* builder, Batch* batch,
                          int max_examples) {
    recorded_ = 0;
    builder->Start(batch);
    while (builder->size() < max_examples) {
      TESSERA_ASSIGN_OR_RETURN(bool more, reader->Next(&example_));
      if (!more) break;
      builder->Add(example_);
      if (limit_ >= 0 && written_ + static_cast<int64_t>(recorded_) >= limit_) continue;
      if (recorded_ == sources_.size()) sources_.emplace_back();
      ExampleSource& source = sources_[recorded_++];
      source.file = reader->current_path();
      source.line = reader->current_line_number();
      source.text.assign(reader->current_line());
    }
    builder->Finish();
    return builder->size();
  }

  // Explains the batch NextBatch read and writes the recorded examples.
  Status Write(const Batch& batch, std::span<const std::span<const float>> dense,
               std::span<const float> predictions) {
    if (recorded_ == 0) return OkStatus();
    TESSERA_RETURN_IF_ERROR(model_->Explain(batch, dense, &explanations_));
    if (explanations_.size() != static_cast<size_t>(batch.size)) {
      return InternalError(absl::StrCat("eval --explain: the model explained ",
                                        explanations_.size(), " of ", batch.size, " examples"));
    }
    for (size_t i = 0; i < recorded_; ++i) {
      const std::string line = ExplanationJson(*schema_, sources_[i], batch.labels[i],
                                               predictions[i], explanations_[i]);
      std::fprintf(file_->get(), "%s\n", line.c_str());
    }
    written_ += static_cast<int64_t>(recorded_);
    recorded_ = 0;
    return OkStatus();
  }

  Status Finish() { return file_->Finish(); }

 private:
  Explainer(const Schema* schema, Model* model, std::unique_ptr<AtomicFile> file, int64_t limit)
      : schema_(schema), model_(model), file_(std::move(file)), limit_(limit) {}

  const Schema* const schema_;
  Model* const model_;
  const std::unique_ptr<AtomicFile> file_;
  const int64_t limit_;  // -1: all
  int64_t written_ = 0;
  size_t recorded_ = 0;  // sources_ of the current batch's first examples
  std::vector<ExampleSource> sources_;
  std::vector<Explanation> explanations_;
  Example example_;
};

// The tokens of field `field`'s sequence in a TSV line, as TsvParser keeps
// them: non-empty, the most recent max_len, oldest first.
std::vector<std::string_view> SequenceTokens(std::string_view line, int field, uint32_t max_len) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  std::vector<std::string_view> tokens;
  // Column field + 1 (after the label); a short line has none.
  for (int skip = 0; skip <= field; ++skip) {
    const size_t tab = line.find('\t');
    if (tab == std::string_view::npos) return tokens;
    line.remove_prefix(tab + 1);
  }
  line = line.substr(0, line.find('\t'));
  while (!line.empty()) {
    const size_t comma = line.find(',');
    const std::string_view token = line.substr(0, comma);
    if (!token.empty()) tokens.push_back(token);
    line.remove_prefix(comma == std::string_view::npos ? line.size() : comma + 1);
  }
  if (tokens.size() > max_len) tokens.erase(tokens.begin(), tokens.end() - max_len);
  return tokens;
}

std::string Metric(const std::optional<double>& v) {
  return v ? absl::StrFormat("%.4f", *v) : std::string("n/a");
}
nlohmann::json JsonMetric(const std::optional<double>& v) {
  return v ? nlohmann::json(*v) : nlohmann::json(nullptr);
}

}  // namespace

std::string ExplanationJson(const Schema& schema, const ExampleSource& source, float label,
                            float prediction, const Explanation& explanation) {
  const auto tokens = [&](int field) {
    std::vector<std::string> kept;
    for (std::string_view t : SequenceTokens(source.text, field, schema.fields()[field].max_len)) {
      kept.emplace_back(t);
    }
    return kept;
  };
  nlohmann::ordered_json doc = nlohmann::ordered_json::object();
  doc["line"] = source.line;
  doc["file"] = source.file;
  doc["label"] = label > 0.5f ? 1 : 0;
  doc["prediction"] = JsonFloat(prediction);
  nlohmann::ordered_json explained = ExplanationJsonObject(schema, explanation, tokens);
  for (auto& [key, value] : explained.items()) doc[key] = std::move(value);
  return doc.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

// A saved model, a published version (a delta loads through its chain), or
// a publish directory (its newest version).
StatusOr<SavedModel> LoadForEval(const std::string& dir) {
  namespace fs = std::filesystem;
  if (!fs::exists(fs::path(dir) / kManifestFileName)) {
    StatusOr<std::vector<uint64_t>> versions = ListVersionNumbers(dir);
    if (versions.ok() && !versions->empty()) {
      return LoadModelVersion(dir, versions->back(), /*with_state=*/false);
    }
    return LoadSavedModel(dir, /*with_state=*/false);  // its NotFound names the manifest
  }
  TESSERA_ASSIGN_OR_RETURN(ModelManifest manifest, ReadManifest(dir));
  if (manifest.kind == SnapshotKind::kDelta) {
    const fs::path version_dir = fs::path(dir).lexically_normal();
    const fs::path parent =
        (version_dir.has_filename() ? version_dir : version_dir.parent_path()).parent_path();
    return LoadModelVersion(parent.string(), manifest.version, /*with_state=*/false);
  }
  return LoadSavedModel(dir, /*with_state=*/false);
}

StatusOr<EvalReport> EvaluateSavedModel(const std::string& model_dir,
                                        const std::vector<std::string>& data,
                                        const EvalOptions& options) {
  if (options.batch_size < 1) return InvalidArgumentError("eval: batch size must be >= 1");
  if (options.explain_limit < -1) return InvalidArgumentError("eval: explain limit must be >= 0");
  const auto start = std::chrono::steady_clock::now();
  TESSERA_ASSIGN_OR_RETURN(SavedModel saved, LoadForEval(model_dir));
  TESSERA_RETURN_IF_ERROR(UseIdSalt(options.id_hasher, model_dir, &saved));
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
  std::unique_ptr<Explainer> explainer;
  if (!options.explain_path.empty()) {
    TESSERA_ASSIGN_OR_RETURN(explainer,
                             Explainer::Open(options, saved, model.get(), builder.get()));
  }
  std::unique_ptr<AtomicFile> out;
  if (!options.predictions_path.empty()) {
    TESSERA_ASSIGN_OR_RETURN(out, AtomicFile::Open(options.predictions_path, "predictions"));
  }
  Batch batch;
  std::vector<float> batch_predictions, predictions, labels;
  std::vector<uint64_t> groups;
  while (true) {
    TESSERA_ASSIGN_OR_RETURN(
        int n, explainer ? explainer->NextBatch(&reader, builder.get(), &batch, options.batch_size)
                         : reader.NextBatch(builder.get(), &batch, options.batch_size));
    if (n == 0) break;
    TESSERA_ASSIGN_OR_RETURN(std::vector<std::span<const float>> dense, FillBatch(saved, &batch));
    batch_predictions.resize(n);
    model->Predict(batch, dense, batch_predictions);
    if (out) WritePredictions(out->get(), batch.labels, batch_predictions);
    if (explainer) TESSERA_RETURN_IF_ERROR(explainer->Write(batch, dense, batch_predictions));
    predictions.insert(predictions.end(), batch_predictions.begin(), batch_predictions.end());
    labels.insert(labels.end(), batch.labels.begin(), batch.labels.end());
    groups.insert(groups.end(), batch.groups.begin(), batch.groups.end());
  }
  TESSERA_RETURN_IF_ERROR(CheckBadRatio(reader.stats(), options.max_bad_ratio));
  if (out) TESSERA_RETURN_IF_ERROR(out->Finish());
  if (explainer) TESSERA_RETURN_IF_ERROR(explainer->Finish());
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
         "                    [--explain PATH [--explain-limit N]]\n"
         "Scores FILE... (files, globs, directories) with the saved model in DIR\n"
         "(<output_dir>/model), a published version (PUBLISH_DIR/<version>) or a\n"
         "publish directory (its newest version) and prints AUC, log loss, GAUC and\n"
         "calibration.\n"
         "  --predictions PATH  also write one \"label<TAB>prediction\" line per example\n"
         "  --batch-size N      examples per batch (default 1024)\n"
         "  --group-field NAME  GAUC groups (default: the training job's; none: no GAUC)\n"
         "  --max-bad-ratio F   fail above this fraction of malformed lines (default 0.01)\n"
         "  --explain PATH      also write one JSON line per example: why it scored what it\n"
         "                      did (line, file, label, prediction, logit, bias, each\n"
         "                      field's contribution, attention weights per history item)\n"
         "  --explain-limit N   explain only the first N examples (default: all)\n";
}

Status RunEval(const std::vector<std::string>& args) { return RunEval(args, FeatureHasher()); }

Status RunEval(const std::vector<std::string>& args, const FeatureHasher& id_hasher) {
  std::string model_dir;
  std::vector<std::string> data;
  EvalOptions options;
  options.id_hasher = id_hasher;
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
    } else if (flag == "--explain") {
      options.explain_path = v;
    } else if (flag == "--explain-limit") {
      ok = absl::SimpleAtoi(v, &options.explain_limit) && options.explain_limit >= 0;
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
  if (options.explain_limit >= 0 && options.explain_path.empty()) {
    return InvalidArgumentError("eval: --explain-limit needs --explain PATH");
  }
  TESSERA_ASSIGN_OR_RETURN(EvalReport report, EvaluateSavedModel(model_dir, data, options));
  std::fputs(EvalReportLine(report).c_str(), stdout);
  std::fputs(EvalReportJson(report).c_str(), stdout);
  std::fflush(stdout);
  return OkStatus();
}

}  // namespace tessera::models
