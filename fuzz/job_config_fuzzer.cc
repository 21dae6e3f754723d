// libFuzzer target: the job-file parser. ParseJobConfig on any YAML text (it
// reads no files: relative paths are only resolved against `base_dir`). The
// first line, when it starts with "#set ", is also applied as a --set
// override ("#set train.epochs=3"), so overrides get fuzzed too.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz/fuzz_util.h"
#include "models/job_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string yaml(reinterpret_cast<const char*>(data), size);
  std::vector<std::string> overrides;
  constexpr std::string_view kSet = "#set ";
  if (std::string_view(yaml).starts_with(kSet)) {
    const size_t eol = yaml.find('\n');
    overrides.push_back(yaml.substr(kSet.size(), eol == std::string::npos ? std::string::npos
                                                                         : eol - kSet.size()));
  }
  auto job = tessera::models::ParseJobConfig(yaml, "fuzz.yaml", "/fuzz-base", overrides);
  if (job.ok()) tessera::fuzz::KeepAlive(job->output_dir.size());
  return 0;
}
