// Command-line flags of the benchmarks that drive the `tessera` binary:
// "--flag=V" or "--flag V", a fixed set of integer, number and text flags,
// and --keep. One parser instead of one per benchmark.
//
// Example:
//   ParseBenchFlags(args, {.ints = {{"--rows", &f.rows}},
//                          .doubles = {{"--drift", &f.drift}},
//                          .strings = {{"--tessera", &f.tessera}},
//                          .keep = &f.keep});
#ifndef TESSERA_BENCH_BENCH_FLAGS_H_
#define TESSERA_BENCH_BENCH_FLAGS_H_

#include <map>
#include <string>
#include <vector>

namespace tessera::bench {

struct BenchFlagSpec {
  std::map<std::string, int*> ints;          // must parse and be >= 0
  std::map<std::string, double*> doubles;    // must parse
  std::map<std::string, std::string*> strings;
  bool* keep = nullptr;                      // set by --keep (no value); null: no such flag
};

// Fills the spec's targets from `args`; false on an unknown flag or a value
// that does not parse. Range checks beyond that are the caller's.
bool ParseBenchFlags(const std::vector<std::string>& args, const BenchFlagSpec& spec);

}  // namespace tessera::bench

#endif  // TESSERA_BENCH_BENCH_FLAGS_H_
