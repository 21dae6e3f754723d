// `tessera bench capacity`: fills an EmbeddingTable (Adagrad) with N rows and
// reports its bytes per row (EmbeddingTable::memory_bytes() / rows) against
// the raw payload, and the growth of the process's resident set size (VmRSS
// from /proc/self/status) per row.
//
// Flags (all optional, "--flag=V" or "--flag V"):
//   --rows N      rows to insert          (default 10000000)
//   --dim D       floats per row          (default 16)
//   --batch B     keys per Push           (default 4096)
//   --stripes S   num_stripes             (default 16)
#ifndef TESSERA_BENCH_CAPACITY_BENCH_H_
#define TESSERA_BENCH_CAPACITY_BENCH_H_

#include <string>
#include <vector>

namespace tessera::bench {

// Runs the benchmark, printing to stdout. `args` excludes the program name.
// Returns 0, or 2 (after printing usage) on a bad flag.
int RunCapacityBench(const std::vector<std::string>& args);

}  // namespace tessera::bench

#endif  // TESSERA_BENCH_CAPACITY_BENCH_H_
