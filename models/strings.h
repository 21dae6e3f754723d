// Debian's abseil (20220623) has its own absl::string_view, distinct from
// std::string_view, so absl::StrCat and friends do not take a
// std::string_view. Sv() converts explicitly (no copy).
#ifndef TESSERA_MODELS_STRINGS_H_
#define TESSERA_MODELS_STRINGS_H_

#include <string_view>

#include "absl/strings/string_view.h"

namespace tessera::models {

inline absl::string_view Sv(std::string_view s) { return absl::string_view(s.data(), s.size()); }

}  // namespace tessera::models

#endif  // TESSERA_MODELS_STRINGS_H_
