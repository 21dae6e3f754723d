// Helpers of the fuzz targets: the fixed small schema of the TSV and
// JSON-instance targets (one field of each type, two sharing a table, both
// numeric transforms) and KeepAlive, which keeps results from being optimized
// away.
#ifndef TESSERA_FUZZ_FUZZ_UTIL_H_
#define TESSERA_FUZZ_FUZZ_UTIL_H_

#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "models/schema.h"

namespace tessera::fuzz {

// Makes the compiler assume `value` is used (as benchmark::DoNotOptimize).
inline void KeepAlive(uint64_t value) { asm volatile("" : : "r,m"(value) : "memory"); }

inline constexpr const char* kFuzzSchemaYaml = R"(
fields:
  - {name: user_id, type: categorical}
  - {name: item_id, type: categorical, table: item}
  - {name: price, type: numeric, transform: log1p}
  - {name: hist_items, type: sequence, table: item, max_len: 3}
  - {name: age, type: numeric}
)";

// Parsed once per process. REQUIRES: kFuzzSchemaYaml is valid.
inline const models::Schema& FuzzSchema() {
  static const models::Schema* const schema = [] {
    auto parsed = models::Schema::Parse(kFuzzSchemaYaml, "fuzz_util.h");
    if (!parsed.ok()) {
      std::fprintf(stderr, "%s\n", parsed.status().ToString().c_str());
      std::abort();
    }
    return new models::Schema(*std::move(parsed));
  }();
  return *schema;
}

}  // namespace tessera::fuzz

#endif  // TESSERA_FUZZ_FUZZ_UTIL_H_
