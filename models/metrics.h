// Evaluation metrics of click predictions (probabilities in [0, 1]) against
// labels (0 or 1; > 0.5 counts as a click). A metric that is undefined for
// its input (AUC of a single class, anything of no examples) is nullopt.
//
//   AUC          exact, by sorting; tied predictions get their average rank
//                (the Mann-Whitney statistic, ties counting one half).
//   LogLoss      mean of -[y log p + (1-y) log(1-p)], p clipped to [eps, 1-eps].
//   GAUC         impression-weighted mean of per-group AUC over the groups
//                that have both classes: sum(n_g * AUC_g) / sum(n_g).
//                Examples whose group is kNoGroup (group field missing)
//                belong to no group.
//   Calibration  mean prediction / observed CTR (1 is calibrated).
//
// Thread-safe functions; WindowedMetrics is thread-compatible.
#ifndef TESSERA_MODELS_METRICS_H_
#define TESSERA_MODELS_METRICS_H_

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

namespace tessera::models {

inline constexpr double kLogLossEpsilon = 1e-7;

// The group of an example whose group field is missing (Batch::groups).
// Never a key: a key's top byte is a table index < 255.
inline constexpr uint64_t kNoGroup = ~uint64_t{0};

// REQUIRES for all: predictions.size() == labels.size() (== groups.size()).
std::optional<double> Auc(std::span<const float> predictions, std::span<const float> labels);
std::optional<double> LogLoss(std::span<const float> predictions, std::span<const float> labels,
                              double eps = kLogLossEpsilon);
std::optional<double> Gauc(std::span<const float> predictions, std::span<const float> labels,
                           std::span<const uint64_t> groups);
std::optional<double> Calibration(std::span<const float> predictions, std::span<const float> labels);

struct EvalMetrics {
  uint64_t count = 0;
  double ctr = 0;  // observed click rate
  std::optional<double> auc;
  std::optional<double> gauc;  // only with groups
  std::optional<double> logloss;
  std::optional<double> calibration;
};

// All of the above at once; `groups` may be empty (then no GAUC).
EvalMetrics Evaluate(std::span<const float> predictions, std::span<const float> labels,
                     std::span<const uint64_t> groups);

// AUC and log loss of the last `window` examples, for progressive
// validation (each example is scored before the model trains on it).
//
// Example:
//   WindowedMetrics recent(100000);
//   recent.Add(predictions, batch.labels);  // predictions made before the update
//   Log(recent.Auc(), recent.LogLoss());
class WindowedMetrics {
 public:
  // REQUIRES: window > 0.
  explicit WindowedMetrics(size_t window);

  void Add(float prediction, float label);
  void Add(std::span<const float> predictions, std::span<const float> labels);

  // Examples in the window (at most `window`), and ever added.
  size_t size() const { return predictions_.size(); }
  uint64_t total() const { return total_; }

  std::optional<double> Auc() const;
  std::optional<double> LogLoss() const;

 private:
  const size_t window_;
  // Ring buffers; once full, next_ is the oldest entry.
  std::vector<float> predictions_;
  std::vector<float> labels_;
  size_t next_ = 0;
  uint64_t total_ = 0;
};

}  // namespace tessera::models

#endif  // TESSERA_MODELS_METRICS_H_
