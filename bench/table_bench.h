// `tessera bench table`: throughput of server::EmbeddingTable next to a naive
// baseline (absl::flat_hash_map<Key, row index> + one contiguous arena of
// value+state rows) holding the same rows, measured in the same run:
// lookups/s (Pull) and lookup+Adagrad-update/s (Push), the median of several
// repetitions and the table/baseline ratio, plus bytes per row of both
// against the raw payload (value + state floats).
//
// Flags (all optional, "--flag=V" or "--flag V"):
//   --rows N      rows in both stores            (default 10000000)
//   --dim D       floats per row                  (default 16)
//   --threads T   threads issuing batches         (default 1)
//   --batch B     keys per batch                  (default 1024)
//   --ops N       keys per measured repetition    (default 2000000)
//   --reps R      repetitions; medians reported   (default 5)
//   --stripes S   EmbeddingTable::Options::num_stripes (default 16)
//   --deadlock_detection 0|1  absl's Mutex deadlock detection, process-wide
//                 (default 1, libabsl's default; it costs ~50 ns per lock)
// With T > 1 the baseline's lookups run unlocked (concurrent reads of a
// flat_hash_map are safe) and its updates hold one global mutex per batch.
#ifndef TESSERA_BENCH_TABLE_BENCH_H_
#define TESSERA_BENCH_TABLE_BENCH_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace tessera::bench {

// Runs the benchmark, printing to stdout. `args` excludes the program name.
// Returns 0, or 2 (after printing usage) on a bad flag.
int RunTableBench(const std::vector<std::string>& args);

// Flag parsing shared with capacity_bench: "--name=N" or "--name N" with an
// unsigned integer N, for names that are keys of `values` (whose values are
// the defaults). False, with `error` set, on anything else.
bool ParseUintFlags(const std::vector<std::string>& args, std::map<std::string, uint64_t>* values,
                    std::string* error);

}  // namespace tessera::bench

#endif  // TESSERA_BENCH_TABLE_BENCH_H_
