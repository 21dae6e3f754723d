// `tessera gen`: writes a synthetic e-commerce CTR dataset drawn from the
// planted click model of models/gen/click_model.h:
//   <out>/schema.yaml  user_id, item_id (table item), category, brand,
//                      price (numeric, log1p), hour, device,
//                      hist_items (sequence, table item), hist_cats
//                      (sequence, table category), hist_brands (sequence,
//                      table brand): the history as item, category and
//                      brand sequences, oldest first
//   <out>/train.tsv    the first (1 - test_fraction) of the impressions
//   <out>/test.tsv     the rest (a time-ordered split)
//   <out>/bayes.json   the Bayes-optimal metrics of the test split (AUC and
//                      log loss of the true click probabilities): the
//                      ceiling a model can approach
// With --windows N (N >= 1) the impressions are cut instead into N
// consecutive time windows of rows / N each (the last takes the rest),
// <out>/window-0.tsv ... window-<N-1>.tsv, no train/test split, and
// bayes.json holds each window's Bayes-optimal AUC and log loss: with
// --drift the users' interests move between (and within) windows, the data
// of a model trained once and then frozen (the drift benchmark).
// Deterministic for a given seed and options.
//
// Example:
//   TESSERA_RETURN_IF_ERROR(RunGen({"--out", "/tmp/shop", "--rows", "200000"}));
#ifndef TESSERA_MODELS_GEN_GEN_H_
#define TESSERA_MODELS_GEN_GEN_H_

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"

namespace tessera::models::gen {

struct GenOptions {
  std::string out;         // output directory (created if missing); required
  uint64_t rows = 200000;  // impressions, train + test
  uint32_t users = 10000;
  uint32_t items = 20000;      // categories = items / 100 (>= 10), brands = items / 5
  uint32_t max_len = 30;       // history length (schema max_len of both sequences)
  double test_fraction = 0.1;  // the most recent impressions go to test.tsv
  uint64_t seed = 1;
  uint32_t windows = 0;  // >= 1: window-<w>.tsv files instead of train/test
  double drift = 0.01;   // ClickWorld's per-impression interest drift, [0, 1]
  double item_drift = 0;  // ClickWorld's per-impression item drift (trends), [0, 1]
};

// One time window of a --windows generation.
struct GenWindow {
  uint64_t rows = 0;
  double ctr = 0;
  double bayes_auc = 0;
  double bayes_logloss = 0;
};

struct GenSummary {
  uint64_t train_rows = 0;
  uint64_t test_rows = 0;
  double train_ctr = 0;
  double test_ctr = 0;
  double bayes_auc = 0;      // of the test split
  double bayes_logloss = 0;  // of the test split
  double seconds = 0;        // wall time of the generation
  std::vector<GenWindow> windows;  // --windows only (train/test rows 0)
};

// The flags of `tessera gen` (the arguments after the subcommand):
// --out DIR, --rows N, --users N, --items N, --max_len N,
// --test_fraction F, --seed N, --windows N, --drift P, --item_drift P;
// `--flag value` or
// `--flag=value`.
// InvalidArgument names a bad flag or value.
StatusOr<GenOptions> ParseGenFlags(const std::vector<std::string>& args);
std::string GenUsage();

// Writes the dataset. InvalidArgument for bad options; Unavailable/DataLoss
// when the files cannot be written.
StatusOr<GenSummary> Generate(const GenOptions& options);

// ParseGenFlags + Generate, then prints a summary line to stdout. `--help`
// prints the usage and returns OK.
Status RunGen(const std::vector<std::string>& args);

}  // namespace tessera::models::gen

#endif  // TESSERA_MODELS_GEN_GEN_H_
