#include "bench/bench_flags.h"

#include "absl/strings/numbers.h"

namespace tessera::bench {

bool ParseBenchFlags(const std::vector<std::string>& args, const BenchFlagSpec& spec) {
  for (size_t i = 0; i < args.size(); ++i) {
    std::string name = args[i], value;
    if (name == "--keep" && spec.keep != nullptr) {
      *spec.keep = true;
      continue;
    }
    if (const size_t eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name.resize(eq);
    } else if (i + 1 < args.size()) {
      value = args[++i];
    }
    if (auto it = spec.ints.find(name); it != spec.ints.end()) {
      if (!absl::SimpleAtoi(value, it->second) || *it->second < 0) return false;
    } else if (auto d = spec.doubles.find(name); d != spec.doubles.end()) {
      if (!absl::SimpleAtod(value, d->second)) return false;
    } else if (auto s = spec.strings.find(name); s != spec.strings.end()) {
      *s->second = value;
    } else {
      return false;
    }
  }
  return true;
}

}  // namespace tessera::bench
