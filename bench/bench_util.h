// What the benchmarks that drive the `tessera` binary share besides their
// flags (bench_flags.h) and clusters (tests/e2e/process_cluster.h): the
// binary's default path, generated data, percentiles.
#ifndef TESSERA_BENCH_BENCH_UTIL_H_
#define TESSERA_BENCH_BENCH_UTIL_H_

#include <string>
#include <vector>

namespace tessera::bench {

// `tessera gen --rows rows --seed 7` into `out`; false (log printed) on failure.
bool GenerateData(const std::string& tessera, const std::string& out, int rows);

// Nearest-rank percentile; NaN for no samples.
double Percentile(std::vector<double> v, double q);

// $TESSERA_BIN, else tools/tessera next to this executable's directory.
std::string DefaultTesseraBinary();

}  // namespace tessera::bench

#endif  // TESSERA_BENCH_BENCH_UTIL_H_
