// `models_bench`: single-core training and scoring throughput of the CTR
// models (models/), on synthetic Criteo-shaped batches built in memory: F
// categorical fields (each its own table, log-uniform key popularity, 5%
// missing) and optional numeric fields. The training loop is what a worker
// does between a pull and a push: TrainStep, then a local SGD step on the
// dense blocks and the batch's sparse rows. Prints samples/s (median of the
// repetitions) of the training loop and of Predict per model.
//
// Flags (all optional, "--flag=V" or "--flag V"):
//   --models LIST  comma-separated lr,fm,deepfm   (default lr,fm,deepfm)
//   --batch B      examples per batch             (default 1024)
//   --fields F     categorical fields             (default 26)
//   --numeric N    numeric fields                 (default 0)
//   --dim K        embedding dim (fm, deepfm)     (default 16)
//   --hidden LIST  deepfm hidden widths           (default 256,128)
//   --vocab V      distinct keys per field        (default 100000)
//   --iters N      batches per repetition         (default 30)
//   --reps R       repetitions; medians reported  (default 5)
#ifndef TESSERA_BENCH_MODELS_BENCH_H_
#define TESSERA_BENCH_MODELS_BENCH_H_

#include <string>
#include <vector>

namespace tessera::bench {

// Runs the benchmark, printing to stdout. `args` excludes the program name.
// Returns 0, 1 if a model cannot be built, or 2 (after printing usage) on a
// bad flag.
int RunModelsBench(const std::vector<std::string>& args);

}  // namespace tessera::bench

#endif  // TESSERA_BENCH_MODELS_BENCH_H_
