// `serving_latency_bench`: latency of `tessera serve`'s :predict while
// versions are being applied, next to the same without (measured in the
// same run). In process: the REST handler (RestApi::Handle: JSON parse,
// encode, score, JSON reply) without the network.
//
// Per model (deepfm, din: embedding dim 16, MLP [256, 128], DIN attention
// [64, 16]), on the `tessera gen` schema (10 fields, 3 sequences of up to
// 30 items): a publish directory whose full version holds every key of the
// generated data plus --extra-rows random rows per table (random values,
// optimizer state included, as training publishes), followed by a
// ModelFollower. Requests of 1 and of 100 instances (rows of the generated
// test split) are sent one at a time; "with deltas" a background writer
// publishes a delta every --delta-ms (--delta-rows changed rows per sparse
// table, 1% of them also tombstoned, all dense tables) and the follower
// applies each as it appears. Prints p50/p99 (medians over --reps
// repetitions), the deltas applied while measuring and the mean age of a
// version (now - its manifest's created_unix_ms) when it started being
// served.
//
// Flags ("--flag=V" or "--flag V"):
//   --models LIST      deepfm,din (default)
//   --seconds S        how long each size is measured per repetition
//                      (default 3)
//   --reps R           repetitions (default 5)
//   --extra-rows N     random rows per sparse table (default 100000)
//   --delta-ms MS      time between deltas (default 200)
//   --delta-rows N     changed rows per sparse table per delta (default 2000)
//   --poll-ms MS       the follower's poll interval (default 20)
//   --dir DIR          where to publish (default: a new directory under
//                      /dev/shm if it exists, else the temp directory)
//   --impressions 0|1  1: log every scored instance to an event log in DIR
//                      (as serve --impression-dir; closing-the-loop issue)
#ifndef TESSERA_BENCH_SERVING_LATENCY_BENCH_H_
#define TESSERA_BENCH_SERVING_LATENCY_BENCH_H_

#include <string>
#include <vector>

namespace tessera::bench {

// Runs the benchmark, printing to stdout. `args` excludes the program name.
// Returns 0, 1 on a failure (printed), 2 on a bad flag.
int RunServingLatencyBench(const std::vector<std::string>& args);

}  // namespace tessera::bench

#endif  // TESSERA_BENCH_SERVING_LATENCY_BENCH_H_
