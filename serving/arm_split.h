// A/B arms of `tessera serve`: which arm answers a request. A request's arm
// is picked by a stable hash of a key (the value of the split field, e.g.
// user_id, so one user always sees one arm), with the arms' weights
// normalized to shares of [0, 1).
//
// The hash is FNV-1a 64 of the key's bytes, finished with splitmix64's
// mixer: fixed, so the split is the same across processes, restarts and
// builds. A key k falls in arm i when unit(k) lies in arm i's share
// [sum of previous weights, + weight_i) / total.
//
// Thread-safe after construction (immutable).
#ifndef TESSERA_SERVING_ARM_SPLIT_H_
#define TESSERA_SERVING_ARM_SPLIT_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace tessera::serving {

struct ArmWeight {
  std::string name;     // [A-Za-z0-9_.-]+, unique
  double weight = 1.0;  // > 0
};

// One --arm NAME=DIR:WEIGHT flag.
struct ArmSpec {
  std::string name;
  std::string dir;
  double weight = 1.0;
};

// Parses "NAME=DIR:WEIGHT" (DIR may hold ':'; the weight follows the last
// one). InvalidArgument naming the flag otherwise.
StatusOr<ArmSpec> ParseArmSpec(std::string_view text);

class ArmSplit {
 public:
  // InvalidArgument for no arms, a bad or repeated name, or a weight that
  // is not a finite number > 0.
  static StatusOr<ArmSplit> Create(std::vector<ArmWeight> arms);

  // The stable position of `key` in [0, 1).
  static double Unit(std::string_view key);
  // The arm `key` falls in.
  size_t Pick(std::string_view key) const;

  size_t size() const { return names_.size(); }
  const std::string& name(size_t arm) const { return names_[arm]; }
  double share(size_t arm) const;  // normalized weight

 private:
  std::vector<std::string> names_;
  std::vector<double> bounds_;  // upper end of each arm's share; last = 1
};

}  // namespace tessera::serving

#endif  // TESSERA_SERVING_ARM_SPLIT_H_
