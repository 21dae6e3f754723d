// A synthetic e-commerce world with a planted click model, the source of
// `tessera gen` data. Impressions come in time order; each has a user, a
// candidate item (with its category, brand and price), the hour and device,
// the user's recent click history, the true click probability and the
// sampled click.
//
// The planted click model (logit, then label ~ Bernoulli(sigmoid(logit))):
//   base
//   + item effect    popularity (Zipf rank: popular items get more
//                    impressions and click more) + a per-item quality
//   + user bias      per-user propensity to click
//   + interest       users prefer a few categories (weights 1.2, 0.8, 0.5);
//                    a preference slot drifts to another category with a
//                    small probability (WorldOptions::drift, 0.01) at each
//                    of the user's impressions
//   + sequence       for the 10 most recent history items h (k = 0 newest),
//                    0.8^k * 1.6 if the target is related to h (of the
//                    same brand: a shopper who just bought from a brand
//                    comes back for its other products), and
//                    0.8^k * 0.12 if the target shares h's category
//   + price          -0.5 * (log price - the category's mean log price)
//   + hour, device   evening peak (+-0.25); ios +0.15, android 0, web -0.25
//   + trend          0 for every item until it trends: with probability
//                    WorldOptions::item_drift (0: never) at each impression,
//                    an item drawn by exposure (so mostly one that is shown
//                    often) gets a new trend ~ N(0, 0.8) that lasts until
//                    it is drawn again: the bestsellers of one week are not
//                    those of the next, and no feature shows it (only the
//                    item's own clicks do)
// Candidates are a mix of popular items (40%), items of a preferred
// category (35%) and items related to recent clicks (25%), so all effects
// are visible in the data. Clicks append to the history (most recent last).
//
// Everything is drawn from one seeded SplitMix64 stream with hand-written
// distributions, so a seed gives the same data on every platform.
//
// Thread-compatible.
#ifndef TESSERA_MODELS_GEN_CLICK_MODEL_H_
#define TESSERA_MODELS_GEN_CLICK_MODEL_H_

#include <cstdint>
#include <span>
#include <vector>

namespace tessera::models::gen {

// SplitMix64: tiny, fast, and fully specified (unlike std:: distributions).
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t Next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  // Uniform in [0, 1).
  double Uniform() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }
  // Uniform in [0, n). REQUIRES: n > 0.
  uint32_t Below(uint32_t n) {
    return static_cast<uint32_t>((static_cast<unsigned __int128>(Next()) * n) >> 64);
  }
  // Standard normal (Box-Muller, one value per call).
  double Normal();

 private:
  uint64_t state_;
};

// Samples an index with probability proportional to its weight in O(1)
// (Walker's alias method).
class AliasTable {
 public:
  AliasTable() = default;
  // REQUIRES: weights non-empty, non-negative, with a positive sum.
  explicit AliasTable(std::span<const double> weights);
  uint32_t Sample(Rng* rng) const;

 private:
  std::vector<double> threshold_;
  std::vector<uint32_t> alias_;
};

struct WorldOptions {
  uint32_t users = 10000;
  uint32_t items = 20000;
  uint32_t categories = 0;  // 0: items / 100, at least 10
  uint32_t brands = 0;      // 0: items / 5, at least categories
  uint32_t max_len = 30;    // history kept per user
  uint64_t rows = 200000;   // impressions planned (spreads the hours over 14 days)
  uint64_t seed = 1;
  // Per impression, the probability that the visiting user's preference
  // slot moves to another category (the interest drift).
  double drift = 0.01;
  // Per impression, the probability that an item (drawn by exposure) starts
  // a new trend (the item drift). 0 draws nothing: data without it are
  // those of earlier versions.
  double item_drift = 0;
};

enum class Device : uint8_t { kIos, kAndroid, kWeb };
inline constexpr const char* kDeviceNames[] = {"ios", "android", "web"};

struct Impression {
  uint64_t time = 0;  // 0, 1, 2, ... (impression order)
  uint32_t user = 0;
  uint32_t item = 0;
  uint32_t category = 0;
  uint32_t brand = 0;
  float price = 0;
  uint32_t hour = 0;
  Device device = Device::kIos;
  std::span<const uint32_t> history;  // clicked items, oldest first
  double probability = 0;             // the true click probability
  bool click = false;
  // Diagnostics for tests: the target's category is one of the user's
  // preferred categories at this time / it is a recent item's related item.
  bool preferred_category = false;
  bool related_to_history = false;
};

class ClickWorld {
 public:
  explicit ClickWorld(const WorldOptions& options);

  // The next impression. Its history span is valid until the next call.
  const Impression& Next();

  uint32_t num_categories() const { return num_categories_; }
  uint32_t num_brands() const { return num_brands_; }
  uint32_t CategoryOf(uint32_t item) const { return item_category_[item]; }
  uint32_t BrandOf(uint32_t item) const { return item_brand_[item]; }
  // For a simulator of live shoppers (`tessera simulate`), the same world
  // one visit at a time. NextVisitor draws the next active user and lets
  // their interests drift exactly as Next() does; Candidate draws a
  // candidate item for them (the 40/35/25 mix); ClickProbability is the
  // planted probability that they click `item` at `hour` on `device`;
  // RecordClick appends a click to their history.
  uint32_t NextVisitor();
  uint32_t Candidate(uint32_t user) { return PickCandidate(user); }
  double ClickProbability(uint32_t user, uint32_t item, uint32_t hour, Device device);
  void RecordClick(uint32_t user, uint32_t item) { PushHistory(user, item); }
  std::span<const uint32_t> UserHistory(uint32_t user) const { return History(user); }
  Device DeviceOf(uint32_t user) const { return user_device_[user]; }
  float PriceOf(uint32_t item) const { return item_price_[item]; }
  // A uniform draw from the world's stream (the simulator's coin flips).
  double Uniform() { return rng_.Uniform(); }

  // Whether a click on `history_item` makes `target` likelier (the planted
  // sequence effect): both are of the same brand.
  bool Related(uint32_t history_item, uint32_t target) const {
    return item_brand_[history_item] == item_brand_[target];
  }

 private:
  static constexpr int kPreferred = 3;

  void BuildItems();
  void BuildUsers();
  uint32_t PickCandidate(uint32_t user);
  double Logit(uint32_t user, uint32_t item);
  void PushHistory(uint32_t user, uint32_t item);
  std::span<const uint32_t> History(uint32_t user) const;

  const WorldOptions options_;
  const uint32_t num_categories_;
  const uint32_t num_brands_;
  Rng rng_;
  // Items.
  std::vector<uint32_t> item_category_;
  std::vector<uint32_t> item_brand_;
  std::vector<float> item_price_;
  std::vector<float> item_effect_;  // popularity + quality + price
  std::vector<float> item_trend_;   // 0 until the item drifts
  std::vector<std::vector<uint32_t>> brand_items_;
  std::vector<std::vector<uint32_t>> category_items_;
  AliasTable popularity_;
  // Users.
  std::vector<float> user_bias_;
  std::vector<uint32_t> user_preferred_;  // kPreferred per user
  std::vector<Device> user_device_;
  std::vector<uint32_t> history_;  // max_len per user, oldest first
  std::vector<uint32_t> history_len_;
  AliasTable activity_;
  uint64_t next_time_ = 0;
  Impression current_;
};

}  // namespace tessera::models::gen

#endif  // TESSERA_MODELS_GEN_CLICK_MODEL_H_
