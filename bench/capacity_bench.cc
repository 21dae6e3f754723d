#include "bench/capacity_bench.h"

#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "bench/table_bench.h"
#include "common/sharding.h"
#include "server/embedding_table.h"
#include "server/optimizer/optimizer.h"

namespace tessera::bench {
namespace {

// VmRSS of this process in bytes, or 0 if /proc is unavailable.
size_t ResidentBytes() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoull(line.substr(6)) * 1024;  // "... kB"
  }
  return 0;
}

}  // namespace

int RunCapacityBench(const std::vector<std::string>& args) {
  std::map<std::string, uint64_t> v = {
      {"rows", 10'000'000}, {"dim", 16}, {"batch", 4096}, {"stripes", 16}};
  std::string error;
  bool ok = ParseUintFlags(args, &v, &error);
  for (const auto& [name, value] : v) {
    if (ok && value == 0) {
      ok = false;
      error = "--" + name + " must be > 0";
    }
  }
  if (!ok || v["rows"] > (1ull << 32) || v["dim"] > 4096) {
    std::fprintf(stderr, "%s\nusage: capacity_bench [--rows N] [--dim D] [--batch B] [--stripes S]\n",
                 error.empty() ? "rows <= 2^32, dim <= 4096" : error.c_str());
    return 2;
  }
  const uint64_t rows = v["rows"], batch = v["batch"];
  const uint32_t dim = static_cast<uint32_t>(v["dim"]);
  OptimizerConfig oc;
  oc.type = OptimizerType::kAdagrad;
  auto opt = server::NewOptimizer(oc);
  if (!opt.ok()) return 1;

  std::vector<Key> keys(batch);
  std::vector<float> grads(batch * dim, 0.01f);
  const size_t rss_before = ResidentBytes();
  server::EmbeddingTable table({.id = 0, .dim = dim, .optimizer = opt->get(),
                                .initializer = InitializerConfig(),
                                .num_stripes = static_cast<int>(v["stripes"])});
  const auto start = std::chrono::steady_clock::now();
  for (uint64_t begin = 0; begin < rows; begin += batch) {
    const size_t n = std::min<uint64_t>(batch, rows - begin);
    for (size_t i = 0; i < n; ++i) keys[i] = Mix64(begin + i);
    table.Push(std::span<const Key>(keys).first(n), std::span<const float>(grads).first(n * dim),
               1'700'000'000);
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const size_t rss_after = ResidentBytes();

  const double payload = 2.0 * dim * sizeof(float);
  const double per_row = static_cast<double>(table.memory_bytes()) / table.num_rows();
  const double rss_per_row = (static_cast<double>(rss_after) - rss_before) / table.num_rows();
  std::printf("capacity_bench: rows=%zu dim=%u optimizer=adagrad stripes=%d\n", table.num_rows(),
              dim, table.num_stripes());
  std::printf("fill             %.3f M rows/s (%.2f s)\n", rows / seconds / 1e6, seconds);
  std::printf("table            %.1f B/row = payload %.0f + header %zu + index/slack %.1f "
              "(bytes_per_row %zu)\n",
              per_row, payload, sizeof(server::EmbeddingTable::RowHeader),
              per_row - payload - sizeof(server::EmbeddingTable::RowHeader),
              table.bytes_per_row());
  std::printf("process RSS      %.1f MiB -> %.1f MiB: %.1f B/row\n", rss_before / 1048576.0,
              rss_after / 1048576.0, rss_per_row);
  return 0;
}

}  // namespace tessera::bench
