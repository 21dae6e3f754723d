// `tessera bench kv`: push, pull and push-and-pull throughput and latency of
// the KV path (worker -> servers over ZeroMQ), for several request sizes and
// dims, next to raw ZeroMQ request/reply for the same message sizes measured
// in the same run. Runs as a worker program on every worker of a cluster;
// worker 0 gathers the figures (through a dense "stats" table: the cluster
// reduces its own benchmark results) and prints them.
#ifndef TESSERA_BENCH_KV_BENCH_H_
#define TESSERA_BENCH_KV_BENCH_H_

#include <string>
#include <vector>

#include "common/status.h"
#include "common/table_config.h"
#include "worker/worker_node.h"

namespace tessera::bench {

// Tables the scheduler must configure for the benchmark.
std::vector<TableConfig> KvBenchTables();

// Flags (all optional): --keys=1000,10000,100000 --dims=8,64 --iters=N
// (per measurement; default adapts to the request size) --label=TEXT.
Status RunKvBenchProgram(worker::WorkerNode& node, const std::vector<std::string>& args);

}  // namespace tessera::bench

#endif  // TESSERA_BENCH_KV_BENCH_H_
