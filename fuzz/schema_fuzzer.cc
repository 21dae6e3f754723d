// libFuzzer target: the schema parser. Schema::Parse on any YAML text; an
// accepted schema must survive its documented round trip
// (Parse(ToYaml()) == *this), else the target aborts.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "models/schema.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using tessera::models::Schema;
  const std::string_view yaml(reinterpret_cast<const char*>(data), size);
  auto schema = Schema::Parse(yaml, "fuzz.yaml");
  if (!schema.ok()) return 0;
  const std::string again = schema->ToYaml();
  auto reparsed = Schema::Parse(again, "fuzz.yaml (ToYaml)");
  if (!reparsed.ok() || !(*reparsed == *schema)) {
    std::fprintf(stderr, "Schema round trip failed: %s\n--- ToYaml:\n%s\n",
                 reparsed.ok() ? "not equal" : reparsed.status().ToString().c_str(),
                 again.c_str());
    std::abort();
  }
  return 0;
}
