#include "bench/kv_bench.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <random>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "bench/raw_zmq_bench.h"
#include "common/logging.h"

namespace tessera::bench {
namespace {

constexpr TableId kStatsTable = 100;
constexpr size_t kStatsPerCase = 4;  // ops/s, p50 us, p99 us, bytes/s
constexpr size_t kMaxCases = 32;
constexpr auto kWait = std::chrono::seconds(120);

enum class Op { kPull, kPush, kPushPull };
const char* OpName(Op op) {
  return op == Op::kPull ? "pull" : op == Op::kPush ? "push" : "push_pull";
}

struct Case {
  Op op;
  size_t keys;
  uint32_t dim;
};

struct Flags {
  std::vector<size_t> keys = {1000, 10000, 100000};
  std::vector<uint32_t> dims = {8, 64};
  int iters = 0;  // 0 = adapt to the request size
  std::string label;
};

StatusOr<Flags> ParseFlags(const std::vector<std::string>& args) {
  Flags f;
  for (const std::string& arg : args) {
    std::pair<std::string, std::string> kv = absl::StrSplit(arg, absl::MaxSplits('=', 1));
    if (kv.first == "--keys" || kv.first == "--dims") {
      std::vector<size_t> values;
      for (absl::string_view v : absl::StrSplit(kv.second, ',')) {
        size_t n;
        if (!absl::SimpleAtoi(v, &n) || n == 0) {
          return InvalidArgumentError("bench kv: bad value in " + arg);
        }
        values.push_back(n);
      }
      if (kv.first == "--keys") {
        f.keys = values;
      } else {
        f.dims.assign(values.begin(), values.end());
      }
    } else if (kv.first == "--iters") {
      if (!absl::SimpleAtoi(kv.second, &f.iters) || f.iters <= 0) {
        return InvalidArgumentError("bench kv: --iters must be a positive integer");
      }
    } else if (kv.first == "--label") {
      f.label = kv.second;
    } else {
      return InvalidArgumentError("bench kv: unknown flag " + arg +
                                  " (known: --keys= --dims= --iters= --label=)");
    }
  }
  for (uint32_t d : f.dims) {
    if (d != 8 && d != 64) return InvalidArgumentError("bench kv: --dims takes 8 and/or 64");
  }
  if (f.keys.size() * f.dims.size() * 3 > kMaxCases) {
    return InvalidArgumentError("bench kv: too many cases");
  }
  return f;
}

TableId TableForDim(uint32_t dim) { return dim == 8 ? 0 : 1; }

double Percentile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(q * static_cast<double>(v.size())))];
}

int ItersFor(const Flags& f, const Case& c) {
  if (f.iters > 0) return f.iters;
  const size_t floats = c.keys * c.dim;
  return floats <= 10'000 ? 2000 : floats <= 100'000 ? 400 : floats <= 1'000'000 ? 60 : 15;
}

// Runs one case with one request in flight; returns the 4 stats.
StatusOr<std::array<double, kStatsPerCase>> RunCase(worker::KvClient& kv, const Case& c,
                                                     int iters, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<Key> keys(c.keys);
  for (Key& k : keys) k = rng();
  std::vector<float> grads(c.keys * c.dim, 1e-3f), out(c.keys * c.dim);
  const TableId table = TableForDim(c.dim);
  std::vector<double> micros;
  const int warmup = std::max(1, iters / 10);
  auto begin = std::chrono::steady_clock::now();
  for (int i = 0; i < warmup + iters; ++i) {
    if (i == warmup) begin = std::chrono::steady_clock::now();
    auto start = std::chrono::steady_clock::now();
    StatusOr<worker::KvClient::Ticket> t = c.op == Op::kPull   ? kv.Pull(table, keys, out)
                                           : c.op == Op::kPush ? kv.Push(table, keys, grads)
                                                               : kv.PushPull(table, keys, grads, out);
    TESSERA_RETURN_IF_ERROR(t.status());
    TESSERA_RETURN_IF_ERROR(kv.Wait(*t, DeadlineIn(kWait)));
    if (i >= warmup) {
      micros.push_back(
          std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start)
              .count());
    }
  }
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count();
  const double payload = static_cast<double>(c.keys) *
                         (8.0 + (c.op == Op::kPushPull ? 8.0 : 4.0) * c.dim);
  return std::array<double, kStatsPerCase>{iters / secs, Percentile(micros, 0.5),
                                           Percentile(micros, 0.99), payload * iters / secs};
}

// Raw ZeroMQ round trip for the same request/reply sizes as a case.
RawZmqResult RawFor(const Case& c, int iters) {
  const size_t keys_bytes = c.keys * 8, values_bytes = c.keys * c.dim * 4;
  switch (c.op) {
    case Op::kPull:
      return MeasureRawZmqRoundTrip(keys_bytes, values_bytes, iters);
    case Op::kPush:
      return MeasureRawZmqRoundTrip(keys_bytes + values_bytes, 64, iters);
    case Op::kPushPull:
      break;
  }
  return MeasureRawZmqRoundTrip(keys_bytes + values_bytes, values_bytes, iters);
}

}  // namespace

std::vector<TableConfig> KvBenchTables() {
  std::vector<TableConfig> tables;
  for (uint32_t dim : {8u, 64u}) {
    TableConfig t;
    t.id = TableForDim(dim);
    t.name = "bench_d" + std::to_string(dim);
    t.dim = dim;
    t.optimizer.type = OptimizerType::kSgd;
    t.optimizer.learning_rate = 0.01f;
    tables.push_back(t);
  }
  TableConfig stats;
  stats.id = kStatsTable;
  stats.name = "bench_stats";
  stats.kind = TableKind::kDense;
  stats.size = kMaxCases * kStatsPerCase;
  stats.optimizer.type = OptimizerType::kSgd;
  stats.optimizer.learning_rate = 1.0f;
  stats.initializer.type = InitializerType::kZeros;
  tables.push_back(stats);
  return tables;
}

Status RunKvBenchProgram(worker::WorkerNode& node, const std::vector<std::string>& args) {
  TESSERA_ASSIGN_OR_RETURN(Flags flags, ParseFlags(args));
  worker::KvClient& kv = node.kv();
  const int rank = node.id().rank;
  const int workers = node.num_workers();
  std::vector<Case> cases;
  for (uint32_t dim : flags.dims) {
    for (size_t keys : flags.keys) {
      for (Op op : {Op::kPush, Op::kPull, Op::kPushPull}) cases.push_back({op, keys, dim});
    }
  }
  // Every worker runs each case at the same time (barrier between cases),
  // then adds its figures into the stats table (SGD with lr 1 on -x adds x).
  std::vector<float> mine(kMaxCases * kStatsPerCase, 0.0f);
  for (size_t i = 0; i < cases.size(); ++i) {
    TESSERA_RETURN_IF_ERROR(node.member().Barrier(protocol::BarrierGroup::kWorkers, DeadlineIn(kWait)));
    // The three ops of one (keys, dim) share their keys, so pulls read rows
    // that pushes created (as in training) instead of fresh initial values.
    TESSERA_ASSIGN_OR_RETURN(auto stats, RunCase(kv, cases[i], ItersFor(flags, cases[i]),
                                                 1234 + 7919 * rank + i / 3));
    for (size_t s = 0; s < kStatsPerCase; ++s) {
      mine[i * kStatsPerCase + s] = -static_cast<float>(stats[s]);
    }
  }
  TESSERA_ASSIGN_OR_RETURN(auto push, kv.DensePush(kStatsTable, mine));
  TESSERA_RETURN_IF_ERROR(kv.Wait(push, DeadlineIn(kWait)));
  TESSERA_RETURN_IF_ERROR(node.member().Barrier(protocol::BarrierGroup::kWorkers, DeadlineIn(kWait)));
  if (rank != 0) return OkStatus();

  std::vector<float> sum(mine.size());
  TESSERA_ASSIGN_OR_RETURN(auto pull, kv.DensePull(kStatsTable, sum));
  TESSERA_RETURN_IF_ERROR(kv.Wait(pull, DeadlineIn(kWait)));
  const int servers = static_cast<int>(kv.view().servers.size());
  std::printf("\n# tessera bench kv %s: %d server(s) x %d worker(s), tcp, one request in flight "
              "per worker\n",
              flags.label.c_str(), servers, workers);
  std::printf("# ours: total keys/s and MB/s over all workers; p50/p99 averaged over workers. "
              "raw: ZeroMQ DEALER/ROUTER round trip of the same bytes, 1 connection.\n");
  std::printf("%-9s %7s %4s | %10s %9s %9s %9s | %9s %9s %9s | %s\n", "op", "keys", "dim",
              "keys/s", "MB/s", "p50_ms", "p99_ms", "raw_p50", "raw_p99", "raw_MB/s",
              "ours/raw per-worker MB/s");
  for (size_t i = 0; i < cases.size(); ++i) {
    const Case& c = cases[i];
    const float* s = &sum[i * kStatsPerCase];
    const double ops = s[0], p50 = s[1] / workers, p99 = s[2] / workers, bytes = s[3];
    RawZmqResult raw = RawFor(c, ItersFor(flags, c));
    const double ratio = raw.mb_per_s > 0 ? (bytes / 1e6 / workers) / raw.mb_per_s : 0;
    std::printf("%-9s %7zu %4u | %10.0f %9.1f %9.3f %9.3f | %9.3f %9.3f %9.1f | %.2f\n",
                OpName(c.op), c.keys, c.dim, ops * static_cast<double>(c.keys), bytes / 1e6,
                p50 / 1e3, p99 / 1e3, raw.p50_us / 1e3, raw.p99_us / 1e3, raw.mb_per_s, ratio);
  }
  std::fflush(stdout);
  return OkStatus();
}

}  // namespace tessera::bench
