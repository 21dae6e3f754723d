// Per-arm and per-model-version A/B results of `tessera serve` (issue 8):
// impressions (scored candidates returned), clicks and purchases (accepted
// POST /v1/feedback events), CTR = clicks / impressions with its 95% Wilson
// interval, and each arm's two-proportion z-test against the first arm
// (the control) (feedback/ab_stats.h).
//
// GET /v1/ab returns Json():
//   {"confidence": 0.95, "control": "<first arm>",
//    "arms": [{"arm": "a", "impressions": N, "clicks": N, "purchases": N,
//              "ctr": x, "ctr_low": x, "ctr_high": x,
//              "versions": [{"model_version": "12", "impressions": N, "clicks": N,
//                            "purchases": N, "ctr": x, "ctr_low": x, "ctr_high": x}, ...]}, ...],
//    "tests": [{"arm": "b", "versus": "a", "ctr_difference": x, "z": x, "p_value": x}, ...]}
// A click counts for the arm and version that served the impression, when
// serving accepts it (attribution windows are the joiner's business). Only
// the newest kMaxVersionsPerArm versions of an arm are listed; older ones
// are summed under "model_version": "older".
//
// Metrics: tessera_serving_ab_impressions_total{arm},
// tessera_serving_ab_clicks_total{arm}, tessera_serving_ab_purchases_total
// {arm} (per arm only: versions change every few seconds).
//
// Thread-safe.
#ifndef TESSERA_SERVING_AB_RESULTS_H_
#define TESSERA_SERVING_AB_RESULTS_H_

#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/synchronization/mutex.h"
#include "common/metrics.h"

namespace tessera::serving {

inline constexpr size_t kMaxVersionsPerArm = 50;

class AbResults {
 public:
  struct Counts {
    uint64_t impressions = 0;
    uint64_t clicks = 0;
    uint64_t purchases = 0;
  };

  // `arms` in the order of RestApiOptions::arms (the first is the control).
  // `metrics` is borrowed and must outlive this object.
  AbResults(std::vector<std::string> arms, MetricsRegistry* metrics);

  void AddImpressions(size_t arm, const std::string& version, uint64_t n);
  // One accepted event: "click" or "purchase".
  void AddEvent(size_t arm, const std::string& version, const std::string& event);

  Counts arm_counts(size_t arm) const;
  nlohmann::ordered_json Json() const;

 private:
  struct Arm {
    Counts total;
    std::map<std::string, Counts> versions;
    std::deque<std::string> version_order;  // oldest first
    Counts older;                           // versions dropped from the list
  };
  Counts* VersionCounts(Arm* arm, const std::string& version) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::vector<std::string> names_;
  MetricsRegistry* const metrics_;
  mutable absl::Mutex mu_;
  std::vector<Arm> arms_ ABSL_GUARDED_BY(mu_);
};

}  // namespace tessera::serving

#endif  // TESSERA_SERVING_AB_RESULTS_H_
