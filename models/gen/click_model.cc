#include "models/gen/click_model.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numbers>

namespace tessera::models::gen {
namespace {

// The planted effects (see the header).
constexpr double kBase = -3.1;
constexpr double kInterest[] = {1.2, 0.8, 0.5};
constexpr double kPreferredPick[] = {0.5, 0.8, 1.0};  // cumulative slot choice
constexpr double kRelated = 1.6;
constexpr double kSameCategory = 0.12;
constexpr double kRecencyDecay = 0.8;
constexpr int kRecentItems = 10;
constexpr double kPrice = -0.5;
constexpr double kPopularity = 0.8;
constexpr double kQualityStddev = 0.35;
constexpr double kUserStddev = 0.35;
constexpr double kTrendStddev = 0.8;
constexpr double kDevice[] = {0.15, 0.0, -0.25};
constexpr double kHourAmplitude = 0.25;
constexpr int kDays = 14;

double HourEffect(uint32_t hour) {
  return kHourAmplitude * std::cos(2 * std::numbers::pi * (static_cast<double>(hour) - 20) / 24);
}

}  // namespace

double Rng::Normal() {
  const double u1 = 1.0 - Uniform();  // (0, 1]
  const double u2 = Uniform();
  return std::sqrt(-2 * std::log(u1)) * std::cos(2 * std::numbers::pi * u2);
}

AliasTable::AliasTable(std::span<const double> weights) : threshold_(weights.size()), alias_(weights.size()) {
  const size_t n = weights.size();
  double sum = 0;
  for (double w : weights) sum += w;
  std::vector<double> scaled(n);
  std::vector<uint32_t> small, large;
  for (size_t i = 0; i < n; ++i) {
    scaled[i] = weights[i] * static_cast<double>(n) / sum;
    (scaled[i] < 1 ? small : large).push_back(static_cast<uint32_t>(i));
  }
  while (!small.empty() && !large.empty()) {
    const uint32_t s = small.back();
    small.pop_back();
    const uint32_t l = large.back();
    threshold_[s] = scaled[s];
    alias_[s] = l;
    scaled[l] -= 1 - scaled[s];
    if (scaled[l] < 1) {
      large.pop_back();
      small.push_back(l);
    }
  }
  for (uint32_t i : small) threshold_[i] = 1, alias_[i] = i;
  for (uint32_t i : large) threshold_[i] = 1, alias_[i] = i;
}

uint32_t AliasTable::Sample(Rng* rng) const {
  const uint32_t i = rng->Below(static_cast<uint32_t>(threshold_.size()));
  return rng->Uniform() < threshold_[i] ? i : alias_[i];
}

ClickWorld::ClickWorld(const WorldOptions& options)
    : options_(options),
      num_categories_(options.categories != 0 ? options.categories : std::max(10u, options.items / 100)),
      num_brands_(std::max(num_categories_, options.brands != 0 ? options.brands : options.items / 5)),
      rng_(options.seed) {
  BuildItems();
  BuildUsers();
}

void ClickWorld::BuildItems() {
  const uint32_t n = options_.items;
  const uint32_t brands_per_category = std::max(1u, num_brands_ / num_categories_);
  std::vector<double> category_log_price(num_categories_);
  for (double& mu : category_log_price) mu = 1.5 + 4.5 * rng_.Uniform();
  item_category_.resize(n);
  item_brand_.resize(n);
  item_price_.resize(n);
  item_effect_.resize(n);
  item_trend_.assign(n, 0.0f);
  category_items_.assign(num_categories_, {});
  // Popularity ranks: a random permutation, so ids say nothing.
  std::vector<uint32_t> rank(n);
  for (uint32_t i = 0; i < n; ++i) rank[i] = i;
  for (uint32_t i = n; i > 1; --i) std::swap(rank[i - 1], rank[rng_.Below(i)]);
  std::vector<double> exposure(n);
  const double log_n = std::log(static_cast<double>(n) + 1);
  for (uint32_t i = 0; i < n; ++i) {
    // The first items cover every category, so none is empty.
    const uint32_t c = i < num_categories_ ? i : rng_.Below(num_categories_);
    item_category_[i] = c;
    category_items_[c].push_back(i);
    item_brand_[i] = std::min(num_brands_ - 1, c * brands_per_category + rng_.Below(brands_per_category));
    const double log_price = category_log_price[c] + 0.5 * rng_.Normal();
    item_price_[i] = static_cast<float>(std::exp(log_price));
    const double log_rank = std::log(static_cast<double>(rank[i]) + 1);
    exposure[i] = std::exp(-0.9 * log_rank);
    item_effect_[i] =
        static_cast<float>(kPopularity * (0.5 - log_rank / log_n) + kQualityStddev * rng_.Normal() +
                           kPrice * (log_price - category_log_price[c]));
  }
  brand_items_.assign(num_brands_, {});
  for (uint32_t i = 0; i < n; ++i) brand_items_[item_brand_[i]].push_back(i);
  popularity_ = AliasTable(exposure);
}

void ClickWorld::BuildUsers() {
  const uint32_t n = options_.users;
  user_bias_.resize(n);
  user_preferred_.resize(static_cast<size_t>(n) * kPreferred);
  user_device_.resize(n);
  history_.assign(static_cast<size_t>(n) * options_.max_len, 0);
  history_len_.assign(n, 0);
  std::vector<double> activity(n);
  for (uint32_t u = 0; u < n; ++u) {
    user_bias_[u] = static_cast<float>(kUserStddev * rng_.Normal());
    uint32_t* preferred = &user_preferred_[static_cast<size_t>(u) * kPreferred];
    for (int k = 0; k < kPreferred; ++k) {
      uint32_t c;
      do {
        c = rng_.Below(num_categories_);
      } while (std::find(preferred, preferred + k, c) != preferred + k);
      preferred[k] = c;
    }
    const double d = rng_.Uniform();
    user_device_[u] = d < 0.55 ? Device::kAndroid : d < 0.9 ? Device::kIos : Device::kWeb;
    activity[u] = 1 / std::sqrt(static_cast<double>(u) + 1);
    // A history from before the log starts: mostly preferred categories.
    const uint32_t len = rng_.Below(options_.max_len + 1);
    for (uint32_t j = 0; j < len; ++j) {
      if (rng_.Uniform() < 0.7) {
        const std::vector<uint32_t>& pool = category_items_[preferred[rng_.Below(kPreferred)]];
        PushHistory(u, pool[rng_.Below(static_cast<uint32_t>(pool.size()))]);
      } else {
        PushHistory(u, popularity_.Sample(&rng_));
      }
    }
  }
  activity_ = AliasTable(activity);
}

void ClickWorld::PushHistory(uint32_t user, uint32_t item) {
  if (options_.max_len == 0) return;
  uint32_t* h = &history_[static_cast<size_t>(user) * options_.max_len];
  uint32_t& len = history_len_[user];
  if (len == options_.max_len) {
    std::memmove(h, h + 1, (len - 1) * sizeof(uint32_t));
    --len;
  }
  h[len++] = item;
}

std::span<const uint32_t> ClickWorld::History(uint32_t user) const {
  if (options_.max_len == 0) return {};
  return {&history_[static_cast<size_t>(user) * options_.max_len], history_len_[user]};
}

uint32_t ClickWorld::PickCandidate(uint32_t user) {
  const double r = rng_.Uniform();
  if (r < 0.40) return popularity_.Sample(&rng_);
  if (r < 0.75) {
    const double s = rng_.Uniform();
    int k = 0;
    while (s >= kPreferredPick[k]) ++k;
    const std::vector<uint32_t>& pool =
        category_items_[user_preferred_[static_cast<size_t>(user) * kPreferred + k]];
    return pool[rng_.Below(static_cast<uint32_t>(pool.size()))];
  }
  const std::span<const uint32_t> history = History(user);
  if (history.empty()) return popularity_.Sample(&rng_);
  const uint32_t back = rng_.Below(std::min<uint32_t>(5, static_cast<uint32_t>(history.size())));
  const std::vector<uint32_t>& pool = brand_items_[item_brand_[history[history.size() - 1 - back]]];
  return pool[rng_.Below(static_cast<uint32_t>(pool.size()))];
}

// The user and item terms of the logit; sets the diagnostics of current_.
double ClickWorld::Logit(uint32_t user, uint32_t item) {
  const uint32_t category = item_category_[item];
  double logit = kBase + item_effect_[item] + item_trend_[item] + user_bias_[user];
  const uint32_t* preferred = &user_preferred_[static_cast<size_t>(user) * kPreferred];
  current_.preferred_category = false;
  for (int k = 0; k < kPreferred; ++k) {
    if (preferred[k] == category) {
      logit += kInterest[k];
      current_.preferred_category = true;
      break;
    }
  }
  current_.related_to_history = false;
  const std::span<const uint32_t> history = History(user);
  double weight = 1;
  const int n = static_cast<int>(history.size());
  for (int j = n - 1; j >= 0 && j >= n - kRecentItems; --j, weight *= kRecencyDecay) {
    const uint32_t h = history[j];
    if (Related(h, item)) {
      logit += kRelated * weight;
      current_.related_to_history = true;
    }
    if (item_category_[h] == category) logit += kSameCategory * weight;
  }
  return logit;
}

uint32_t ClickWorld::NextVisitor() {
  const uint32_t user = activity_.Sample(&rng_);
  if (rng_.Uniform() < options_.drift) {
    uint32_t* preferred = &user_preferred_[static_cast<size_t>(user) * kPreferred];
    const uint32_t c = rng_.Below(num_categories_);
    if (std::find(preferred, preferred + kPreferred, c) == preferred + kPreferred) {
      preferred[rng_.Below(kPreferred)] = c;
    }
  }
  if (options_.item_drift > 0 && rng_.Uniform() < options_.item_drift) {
    item_trend_[popularity_.Sample(&rng_)] = static_cast<float>(kTrendStddev * rng_.Normal());
  }
  return user;
}

double ClickWorld::ClickProbability(uint32_t user, uint32_t item, uint32_t hour, Device device) {
  const double logit = Logit(user, item) + HourEffect(hour) + kDevice[static_cast<int>(device)];
  return 1 / (1 + std::exp(-logit));
}

const Impression& ClickWorld::Next() {
  Impression& imp = current_;
  if (imp.click) PushHistory(imp.user, imp.item);  // the previous impression's click
  imp.time = next_time_++;
  const uint32_t user = NextVisitor();
  imp.user = user;
  imp.item = PickCandidate(user);
  imp.category = item_category_[imp.item];
  imp.brand = item_brand_[imp.item];
  imp.price = item_price_[imp.item];
  const uint64_t rows = std::max<uint64_t>(options_.rows, 1);
  imp.hour = static_cast<uint32_t>((static_cast<unsigned __int128>(imp.time) * 24 * kDays / rows) % 24);
  imp.device = rng_.Uniform() < 0.85 ? user_device_[user] : static_cast<Device>(rng_.Below(3));
  const double logit = Logit(user, imp.item) + HourEffect(imp.hour) + kDevice[static_cast<int>(imp.device)];
  imp.probability = 1 / (1 + std::exp(-logit));
  imp.click = rng_.Uniform() < imp.probability;
  imp.history = History(user);
  return imp;
}

}  // namespace tessera::models::gen
