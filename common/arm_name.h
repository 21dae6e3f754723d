// The names of A/B arms (`tessera serve --arm NAME=...`, `join.arms`): 1 to
// 64 characters of [A-Za-z0-9_.-], so a name is safe in an event log
// record, a metric label and a file name.
#ifndef TESSERA_COMMON_ARM_NAME_H_
#define TESSERA_COMMON_ARM_NAME_H_

#include <algorithm>
#include <string_view>

namespace tessera {

inline constexpr char kArmNameRule[] = "1-64 of [A-Za-z0-9_.-]";

inline bool IsArmName(std::string_view name) {
  return !name.empty() && name.size() <= 64 && std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == '-';
  });
}

}  // namespace tessera

#endif  // TESSERA_COMMON_ARM_NAME_H_
