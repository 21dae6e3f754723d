#include "serving/arm_split.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <set>

#include "absl/strings/str_cat.h"
#include "common/arm_name.h"

namespace tessera::serving {
StatusOr<ArmSpec> ParseArmSpec(std::string_view text) {
  const auto bad = [&](std::string_view why) {
    return InvalidArgumentError(absl::StrCat("--arm ", std::string(text), ": ", std::string(why),
                                             " (expected NAME=DIR:WEIGHT, e.g. b=runs/b:0.1)"));
  };
  const size_t eq = text.find('=');
  const size_t colon = text.rfind(':');
  if (eq == std::string_view::npos || colon == std::string_view::npos || colon < eq) {
    return bad("missing '=' or ':'");
  }
  ArmSpec spec{std::string(text.substr(0, eq)), std::string(text.substr(eq + 1, colon - eq - 1)),
               0};
  const std::string_view weight = text.substr(colon + 1);
  const auto [end, ec] = std::from_chars(weight.data(), weight.data() + weight.size(), spec.weight);
  if (ec != std::errc() || end != weight.data() + weight.size()) return bad("bad weight");
  if (!IsArmName(spec.name)) return bad(std::string("NAME must be ") + kArmNameRule);
  if (spec.dir.empty()) return bad("empty DIR");
  if (!std::isfinite(spec.weight) || spec.weight <= 0) return bad("WEIGHT must be > 0");
  return spec;
}

StatusOr<ArmSplit> ArmSplit::Create(std::vector<ArmWeight> arms) {
  if (arms.empty()) return InvalidArgumentError("no arms");
  ArmSplit split;
  std::set<std::string> seen;
  double total = 0;
  for (const ArmWeight& a : arms) {
    if (!IsArmName(a.name)) {
      return InvalidArgumentError(absl::StrCat("arm '", a.name, "': bad name (", kArmNameRule, ")"));
    }
    if (!seen.insert(a.name).second) {
      return InvalidArgumentError(absl::StrCat("arm '", a.name, "' is given twice"));
    }
    if (!std::isfinite(a.weight) || a.weight <= 0) {
      return InvalidArgumentError(absl::StrCat("arm '", a.name, "': weight must be > 0"));
    }
    total += a.weight;
  }
  double sum = 0;
  for (const ArmWeight& a : arms) {
    sum += a.weight;
    split.names_.push_back(a.name);
    split.bounds_.push_back(sum / total);
  }
  split.bounds_.back() = 1.0;
  return split;
}

double ArmSplit::Unit(std::string_view key) {
  uint64_t h = 14695981039346656037ull;  // FNV-1a 64
  for (unsigned char c : key) {
    h ^= c;
    h *= 1099511628211ull;
  }
  h += 0x9e3779b97f4a7c15ull;  // splitmix64's finalizer
  h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9ull;
  h = (h ^ (h >> 27)) * 0x94d049bb133111ebull;
  h ^= h >> 31;
  return static_cast<double>(h >> 11) * 0x1.0p-53;
}

size_t ArmSplit::Pick(std::string_view key) const {
  if (names_.size() == 1) return 0;
  const double u = Unit(key);
  const auto it = std::upper_bound(bounds_.begin(), bounds_.end(), u);
  return std::min<size_t>(it - bounds_.begin(), names_.size() - 1);
}

double ArmSplit::share(size_t arm) const {
  return bounds_[arm] - (arm == 0 ? 0.0 : bounds_[arm - 1]);
}

}  // namespace tessera::serving
