#include "serving/ab_results.h"

#include <algorithm>
#include <utility>

#include "serving/feedback/ab_stats.h"

namespace tessera::serving {

using ojson = nlohmann::ordered_json;

namespace {

ojson CountsJson(const AbResults::Counts& c) {
  const feedback::CtrInterval ci =
      feedback::WilsonInterval(std::min(c.clicks, c.impressions), c.impressions);
  return ojson{{"impressions", c.impressions}, {"clicks", c.clicks},   {"purchases", c.purchases},
               {"ctr", ci.ctr},                {"ctr_low", ci.low},    {"ctr_high", ci.high}};
}

}  // namespace

AbResults::AbResults(std::vector<std::string> arms, MetricsRegistry* metrics)
    : names_(std::move(arms)), metrics_(metrics), arms_(names_.size()) {}

AbResults::Counts* AbResults::VersionCounts(Arm* arm, const std::string& version) {
  auto [it, inserted] = arm->versions.try_emplace(version);
  if (inserted) {
    arm->version_order.push_back(version);
    if (arm->version_order.size() > kMaxVersionsPerArm) {
      const std::string oldest = arm->version_order.front();
      arm->version_order.pop_front();
      const Counts gone = arm->versions.at(oldest);
      arm->older.impressions += gone.impressions;
      arm->older.clicks += gone.clicks;
      arm->older.purchases += gone.purchases;
      arm->versions.erase(oldest);
    }
  }
  const auto found = arm->versions.find(version);
  return found != arm->versions.end() ? &found->second : &arm->older;
}

void AbResults::AddImpressions(size_t arm, const std::string& version, uint64_t n) {
  {
    absl::MutexLock lock(&mu_);
    arms_[arm].total.impressions += n;
    VersionCounts(&arms_[arm], version)->impressions += n;
  }
  metrics_
      ->GetCounter("tessera_serving_ab_impressions_total",
                   "Scored candidates returned (impressions), by A/B arm", {{"arm", names_[arm]}})
      .Increment(static_cast<double>(n));
}

void AbResults::AddEvent(size_t arm, const std::string& version, const std::string& event) {
  const bool click = event == "click";
  {
    absl::MutexLock lock(&mu_);
    Counts* v = VersionCounts(&arms_[arm], version);
    (click ? arms_[arm].total.clicks : arms_[arm].total.purchases)++;
    (click ? v->clicks : v->purchases)++;
  }
  metrics_
      ->GetCounter(click ? "tessera_serving_ab_clicks_total" : "tessera_serving_ab_purchases_total",
                   click ? "Accepted click feedback, by A/B arm"
                         : "Accepted purchase feedback, by A/B arm",
                   {{"arm", names_[arm]}})
      .Increment();
}

AbResults::Counts AbResults::arm_counts(size_t arm) const {
  absl::MutexLock lock(&mu_);
  return arms_[arm].total;
}

ojson AbResults::Json() const {
  absl::MutexLock lock(&mu_);
  ojson arms = ojson::array();
  for (size_t a = 0; a < arms_.size(); ++a) {
    ojson arm{{"arm", names_[a]}};
    arm.update(CountsJson(arms_[a].total));
    ojson versions = ojson::array();
    for (const std::string& v : arms_[a].version_order) {
      ojson entry{{"model_version", v}};
      entry.update(CountsJson(arms_[a].versions.at(v)));
      versions.push_back(std::move(entry));
    }
    if (arms_[a].older.impressions + arms_[a].older.clicks + arms_[a].older.purchases > 0) {
      ojson entry{{"model_version", "older"}};
      entry.update(CountsJson(arms_[a].older));
      versions.push_back(std::move(entry));
    }
    arm["versions"] = std::move(versions);
    arms.push_back(std::move(arm));
  }
  ojson tests = ojson::array();
  for (size_t a = 1; a < arms_.size(); ++a) {
    const Counts& x = arms_[a].total;
    const Counts& c = arms_[0].total;
    const feedback::ZTest t = feedback::TwoProportionZTest(std::min(x.clicks, x.impressions),
                                                           x.impressions,
                                                           std::min(c.clicks, c.impressions),
                                                           c.impressions);
    const double diff = (x.impressions ? double(x.clicks) / x.impressions : 0) -
                        (c.impressions ? double(c.clicks) / c.impressions : 0);
    tests.push_back(ojson{{"arm", names_[a]},
                          {"versus", names_[0]},
                          {"ctr_difference", diff},
                          {"z", t.z},
                          {"p_value", t.p_value}});
  }
  return ojson{{"confidence", 0.95},
               {"control", names_.empty() ? "" : names_[0]},
               {"arms", std::move(arms)},
               {"tests", std::move(tests)}};
}

}  // namespace tessera::serving
