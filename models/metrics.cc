#include "models/metrics.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <tuple>

namespace tessera::models {
namespace {

struct Scored {
  float prediction;
  bool positive;
};

// AUC of `items` sorted by prediction (ascending), or nullopt for one class.
std::optional<double> SortedAuc(std::span<const Scored> items) {
  double positives = 0;
  double positive_rank_sum = 0;
  size_t i = 0;
  while (i < items.size()) {
    size_t j = i;
    double tied_positives = 0;
    while (j < items.size() && items[j].prediction == items[i].prediction) {
      tied_positives += items[j].positive ? 1 : 0;
      ++j;
    }
    // Ranks i+1 .. j (1-based) share their average.
    const double average_rank = (static_cast<double>(i + 1) + static_cast<double>(j)) / 2;
    positive_rank_sum += tied_positives * average_rank;
    positives += tied_positives;
    i = j;
  }
  const double negatives = static_cast<double>(items.size()) - positives;
  if (positives == 0 || negatives == 0) return std::nullopt;
  return (positive_rank_sum - positives * (positives + 1) / 2) / (positives * negatives);
}

bool ByPrediction(const Scored& a, const Scored& b) { return a.prediction < b.prediction; }

}  // namespace

std::optional<double> Auc(std::span<const float> predictions, std::span<const float> labels) {
  assert(predictions.size() == labels.size());
  std::vector<Scored> items(predictions.size());
  for (size_t i = 0; i < items.size(); ++i) items[i] = {predictions[i], labels[i] > 0.5f};
  std::sort(items.begin(), items.end(), ByPrediction);
  return SortedAuc(items);
}

std::optional<double> LogLoss(std::span<const float> predictions, std::span<const float> labels, double eps) {
  assert(predictions.size() == labels.size());
  if (predictions.empty()) return std::nullopt;
  double sum = 0;
  for (size_t i = 0; i < predictions.size(); ++i) {
    const double p = std::clamp(static_cast<double>(predictions[i]), eps, 1 - eps);
    sum -= labels[i] > 0.5f ? std::log(p) : std::log1p(-p);
  }
  return sum / static_cast<double>(predictions.size());
}

std::optional<double> Gauc(std::span<const float> predictions, std::span<const float> labels,
                           std::span<const uint64_t> groups) {
  assert(predictions.size() == labels.size() && predictions.size() == groups.size());
  std::vector<size_t> order(predictions.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return std::tie(groups[a], predictions[a]) < std::tie(groups[b], predictions[b]);
  });
  std::vector<Scored> items;
  double weighted = 0;
  double weight = 0;
  size_t i = 0;
  while (i < order.size()) {
    items.clear();
    size_t j = i;
    for (; j < order.size() && groups[order[j]] == groups[order[i]]; ++j) {
      items.push_back({predictions[order[j]], labels[order[j]] > 0.5f});
    }
    if (groups[order[i]] == kNoGroup) {
      i = j;
      continue;
    }
    if (const std::optional<double> auc = SortedAuc(items)) {
      weighted += static_cast<double>(items.size()) * *auc;
      weight += static_cast<double>(items.size());
    }
    i = j;
  }
  if (weight == 0) return std::nullopt;
  return weighted / weight;
}

std::optional<double> Calibration(std::span<const float> predictions, std::span<const float> labels) {
  assert(predictions.size() == labels.size());
  double predicted = 0;
  double observed = 0;
  for (size_t i = 0; i < predictions.size(); ++i) {
    predicted += predictions[i];
    observed += labels[i] > 0.5f ? 1 : 0;
  }
  if (observed == 0) return std::nullopt;
  return predicted / observed;
}

EvalMetrics Evaluate(std::span<const float> predictions, std::span<const float> labels,
                     std::span<const uint64_t> groups) {
  EvalMetrics m;
  m.count = predictions.size();
  for (float label : labels) m.ctr += label > 0.5f ? 1 : 0;
  if (m.count > 0) m.ctr /= static_cast<double>(m.count);
  m.auc = Auc(predictions, labels);
  if (!groups.empty()) m.gauc = Gauc(predictions, labels, groups);
  m.logloss = LogLoss(predictions, labels);
  m.calibration = Calibration(predictions, labels);
  return m;
}

WindowedMetrics::WindowedMetrics(size_t window) : window_(window) {
  assert(window > 0);
  predictions_.reserve(window);
  labels_.reserve(window);
}

void WindowedMetrics::Add(float prediction, float label) {
  ++total_;
  if (predictions_.size() < window_) {
    predictions_.push_back(prediction);
    labels_.push_back(label);
    return;
  }
  predictions_[next_] = prediction;
  labels_[next_] = label;
  next_ = (next_ + 1) % window_;
}

void WindowedMetrics::Add(std::span<const float> predictions, std::span<const float> labels) {
  assert(predictions.size() == labels.size());
  for (size_t i = 0; i < predictions.size(); ++i) Add(predictions[i], labels[i]);
}

// The window's order does not matter to either metric.
std::optional<double> WindowedMetrics::Auc() const { return models::Auc(predictions_, labels_); }

std::optional<double> WindowedMetrics::LogLoss() const { return models::LogLoss(predictions_, labels_); }

}  // namespace tessera::models
