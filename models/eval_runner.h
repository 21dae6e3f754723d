// `tessera eval`: scores data files with a saved model (models/saved_model.h)
// on this machine, no cluster, and reports the metrics training reports
// (AUC, log loss, GAUC, calibration, examples). Scoring uses the same data
// reader, batch builder and Model::Predict as the workers, and the saved
// parameters (keys the model never saw get their deterministic initial
// value, as from the servers), so it matches the live cluster's evaluation.
//
// With --explain it also writes why each example scored what it did
// (Model::Explain, models/explanation.h) as one JSON line per example; see
// ExplanationJson for the format.
//
// Thread-compatible: one evaluation per call; calls may run in parallel.
//
// Example:
//   TESSERA_ASSIGN_OR_RETURN(EvalReport r,
//       EvaluateSavedModel("runs/ctr/model", {"data/test.tsv"}, {.batch_size = 4096}));
//   std::cout << EvalReportLine(r);
#ifndef TESSERA_MODELS_EVAL_RUNNER_H_
#define TESSERA_MODELS_EVAL_RUNNER_H_

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"
#include "models/data_reader.h"
#include "models/explanation.h"
#include "models/metrics.h"
#include "models/schema.h"

namespace tessera::models {

struct EvalOptions {
  int batch_size = 1024;  // examples per Predict call; >= 1
  // Optional: writes one "label\tprediction" line per example, in input
  // order (label 0 or 1, prediction with 9 significant digits), published
  // atomically (temp name, then rename).
  std::string predictions_path = "";
  // Categorical field grouping examples for GAUC. Empty: the model's
  // training group field (manifest group_field); "none": no GAUC.
  std::string group_field = "";
  // Fails when more than this fraction of lines is malformed.
  double max_bad_ratio = 0.01;
  // Optional: writes one ExplanationJson line per explained example, in
  // input order, published atomically like predictions_path. The model must
  // implement Model::Explain (else Unimplemented, before any scoring).
  std::string explain_path = "";
  // Explains only the first this many examples (-1: all; scoring and the
  // metrics still cover every example).
  int64_t explain_limit = -1;
  // The id salt the model was trained with (FailedPrecondition if its
  // manifest's fingerprint differs; models/saved_model.h CheckIdSalt).
  FeatureHasher id_hasher = {};
};

// Where a scored example came from.
struct ExampleSource {
  std::string file;
  uint64_t line = 0;  // 1-based line in `file`, counting every line
  std::string text;   // the TSV line, without its '\n'
};

// One line of --explain (no trailing '\n'), a JSON object with the keys, in
// this order:
//   line, file        where the example is (ExampleSource)
//   label             0 or 1
//   prediction        the probability Predict gave it
//   logit, bias       the explanation's (logit == bias + sum of fields)
//   fields            {"<field name>": contribution, ...} in schema order
//   attention         {"<sequence field name>": [{"item": "<token>",
//                     "weight": w}, ...], ...}: one entry per history token
//                     the model saw, oldest first, paired with the token's
//                     text in `source.text` (the most recent max_len
//                     non-empty tokens, as the parser keeps them); {} for a
//                     model without attention. A weight with no token (a
//                     model bug) gets "item": null.
// Floats are written with the fewest digits that read back as the same float.
std::string ExplanationJson(const Schema& schema, const ExampleSource& source, float label,
                            float prediction, const Explanation& explanation);

struct EvalReport {
  std::string model_dir;
  EvalMetrics metrics;
  DataStats data;
  std::string group_field;  // the one used ("" = none)
  double seconds = 0;
};

// Loads the model (without optimizer state) and scores `data` (files,
// globs, directories; see ExpandInputs). Errors: the model's (NotFound,
// DataLoss, ...), the data's (NotFound, DataLoss, too many bad lines:
// InvalidArgument), writing the predictions or explanations (Unavailable), a
// model that cannot explain itself with explain_path set (Unimplemented).
StatusOr<EvalReport> EvaluateSavedModel(const std::string& model_dir,
                                        const std::vector<std::string>& data,
                                        const EvalOptions& options);

// "eval: 10000 examples, auc 0.6512, logloss 0.4821, gauc 0.6012, calibration 1.0123, ctr 0.1200"
std::string EvalReportLine(const EvalReport& report);
// One JSON object: model, samples, ctr, auc, logloss, gauc, calibration
// (null when undefined), lines, bad_lines, seconds.
std::string EvalReportJson(const EvalReport& report);

// The command line of `tessera eval` (the arguments after "eval"):
//   --model DIR --data FILE... [--predictions PATH] [--batch-size N]
//   [--group-field NAME|none] [--max-bad-ratio F]
//   [--explain PATH [--explain-limit N]]
// `--flag value` or `--flag=value`; --data takes every value up to the next
// flag. Prints EvalReportLine then EvalReportJson to stdout. `--help` prints
// the usage. InvalidArgument names a bad flag or value.
Status RunEval(const std::vector<std::string>& args);
// With the id salt of the model (the CLI reads it from the environment).
Status RunEval(const std::vector<std::string>& args, const FeatureHasher& id_hasher);
std::string EvalUsage();

}  // namespace tessera::models

#endif  // TESSERA_MODELS_EVAL_RUNNER_H_
