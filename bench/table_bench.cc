#include "bench/table_bench.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "common/mutex.h"
#include "common/sharding.h"
#include "server/embedding_table.h"
#include "server/initializer.h"
#include "server/optimizer/optimizer.h"

namespace tessera::bench {

bool ParseUintFlags(const std::vector<std::string>& args, std::map<std::string, uint64_t>* values,
                    std::string* error) {
  for (size_t i = 0; i < args.size(); ++i) {
    std::string name = args[i], text;
    if (name.rfind("--", 0) != 0) {
      *error = "not a flag: " + name;
      return false;
    }
    name = name.substr(2);
    if (const size_t eq = name.find('='); eq != std::string::npos) {
      text = name.substr(eq + 1);
      name = name.substr(0, eq);
    } else if (i + 1 < args.size()) {
      text = args[++i];
    }
    auto it = values->find(name);
    char* end = nullptr;
    const unsigned long long v = std::strtoull(text.c_str(), &end, 10);
    if (it == values->end() || text.empty() || *end != '\0') {
      *error = "bad flag --" + name + " '" + text + "' (flags take integers)";
      return false;
    }
    it->second = v;
  }
  return true;
}

namespace {

using Clock = std::chrono::steady_clock;
constexpr int64_t kNow = 1'700'000'000;

struct Flags {
  uint64_t rows, dim, threads, batch, ops, reps, stripes;
};

// Sets absl's deadlock detection for the whole process and says so. Debian's
// libabsl enables it by default, which makes every Mutex::Lock cost ~50 ns
// more (it maintains a lock graph).
void SetDeadlockDetection(uint64_t on) {
  absl::SetMutexDeadlockDetectionMode(on ? absl::OnDeadlockCycle::kAbort
                                         : absl::OnDeadlockCycle::kIgnore);
  std::printf("absl mutex deadlock detection: %s\n", on ? "on (libabsl default)" : "off");
}

// The naive store the issue compares against: one flat_hash_map from key to
// row index into one arena of value+state rows. Thread-compatible.
class Baseline {
 public:
  Baseline(size_t rows, size_t dim, const server::Optimizer* opt)
      : dim_(dim), row_floats_(dim * (1 + opt->state_floats_per_dim())), opt_(opt) {
    arena_.reserve(rows * row_floats_);
  }

  void Insert(Key key, const InitializerConfig& init) {
    const auto [it, inserted] = index_.try_emplace(key, static_cast<uint32_t>(index_.size()));
    if (!inserted) return;
    arena_.resize(arena_.size() + row_floats_);
    float* row = &arena_[size_t{it->second} * row_floats_];
    server::InitializeRow(init, 0, key, {row, dim_});
    opt_->InitState({row + dim_, row_floats_ - dim_});
  }

  void Lookup(std::span<const Key> keys, float* out) const {
    for (Key k : keys) {
      const float* row = &arena_[size_t{index_.find(k)->second} * row_floats_];
      std::memcpy(out, row, dim_ * sizeof(float));
      out += dim_;
    }
  }

  void Update(std::span<const Key> keys, const float* grads) {
    for (Key k : keys) {
      float* row = &arena_[size_t{index_.find(k)->second} * row_floats_];
      opt_->Update({row, dim_}, {row + dim_, row_floats_ - dim_}, {grads, dim_}, 1);
      grads += dim_;
    }
  }

  size_t memory_bytes() const {
    // Swiss table: one control byte plus one slot per bucket.
    return index_.capacity() * (1 + sizeof(std::pair<const Key, uint32_t>)) +
           arena_.capacity() * sizeof(float);
  }

 private:
  const size_t dim_;
  const size_t row_floats_;
  const server::Optimizer* opt_;
  absl::flat_hash_map<Key, uint32_t> index_;
  std::vector<float> arena_;
};

double ThreadCpuSeconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + ts.tv_nsec * 1e-9;
}

// Wall-clock seconds and CPU seconds summed over the worker threads. On a
// busy machine the CPU figure is the steadier measure of per-core speed.
struct Seconds {
  double wall = 0;
  double cpu = 0;
};

// Runs fn(thread, begin, end) over [0, n) split across `threads`.
Seconds Timed(size_t threads, size_t n, const std::function<void(size_t, size_t, size_t)>& fn) {
  std::vector<double> cpu(threads);
  const auto start = Clock::now();
  std::vector<std::thread> pool;
  for (size_t t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      const double cpu_start = ThreadCpuSeconds();
      fn(t, n * t / threads, n * (t + 1) / threads);
      cpu[t] = ThreadCpuSeconds() - cpu_start;
    });
  }
  for (auto& th : pool) th.join();
  Seconds s;
  s.wall = std::chrono::duration<double>(Clock::now() - start).count();
  for (double c : cpu) s.cpu += c;
  return s;
}

// Calls op(keys of one batch, thread) over ops[begin, end) in batches.
void InBatches(const std::vector<Key>& ops, size_t begin, size_t end, size_t batch,
               const std::function<void(std::span<const Key>)>& op) {
  for (size_t b = begin; b < end; b += batch) {
    op(std::span<const Key>(ops).subspan(b, std::min(batch, end - b)));
  }
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Operations per second of wall time and per CPU second, over repetitions.
struct Rates {
  std::vector<double> wall, cpu;
  void Add(size_t ops, Seconds s) {
    wall.push_back(ops / s.wall);
    cpu.push_back(ops / s.cpu);
  }
};

void PrintRates(const char* what, const Rates& table, const Rates& base) {
  const double tw = Median(table.wall), bw = Median(base.wall);
  const double tc = Median(table.cpu), bc = Median(base.cpu);
  std::printf("%-15s wall: table %7.3f M/s  baseline %7.3f M/s  ratio %.2f | per CPU-s: table "
              "%7.3f M  baseline %7.3f M  ratio %.2f  (medians of %zu)\n",
              what, tw / 1e6, bw / 1e6, tw / bw, tc / 1e6, bc / 1e6, tc / bc, table.wall.size());
}

int Run(const Flags& f) {
  OptimizerConfig oc;
  oc.type = OptimizerType::kAdagrad;
  auto opt = server::NewOptimizer(oc);
  if (!opt.ok()) return 1;
  InitializerConfig init;
  server::EmbeddingTable table({.id = 0, .dim = static_cast<uint32_t>(f.dim), .optimizer = opt->get(),
                                .initializer = init, .num_stripes = static_cast<int>(f.stripes)});
  Baseline base(f.rows, f.dim, opt->get());
  std::printf("table_bench: rows=%llu dim=%llu optimizer=adagrad threads=%llu batch=%llu ops=%llu "
              "reps=%llu stripes=%d\n",
              (unsigned long long)f.rows, (unsigned long long)f.dim, (unsigned long long)f.threads,
              (unsigned long long)f.batch, (unsigned long long)f.ops, (unsigned long long)f.reps,
              table.num_stripes());

  // Distinct, well spread keys (Mix64 is a bijection).
  std::vector<Key> keys(f.rows);
  for (size_t i = 0; i < f.rows; ++i) keys[i] = Mix64(i);
  std::vector<float> grads(f.batch * f.dim, 0.01f), out(f.threads * f.batch * f.dim);
  const double fill_table = Timed(1, f.rows, [&](size_t, size_t b, size_t e) {
    InBatches(keys, b, e, f.batch, [&](std::span<const Key> k) {
      table.Push(k, std::span<const float>(grads).first(k.size() * f.dim), kNow);
    });
  }).cpu;
  const double fill_base = Timed(1, f.rows, [&](size_t, size_t b, size_t e) {
    for (size_t i = b; i < e; ++i) base.Insert(keys[i], init);
  }).cpu;
  std::printf("%-15s per CPU-s: table %7.3f M  baseline %7.3f M  (insert, one run)\n", "fill",
              f.rows / fill_table / 1e6, f.rows / fill_base / 1e6);

  // Uniformly random keys among the rows: the cache-hostile case.
  std::vector<Key> ops(f.ops);
  std::mt19937_64 rng(1);
  for (Key& k : ops) k = keys[rng() % f.rows];
  Mutex base_mu;
  Rates t_lookup, b_lookup, t_update, b_update;
  for (uint64_t rep = 0; rep < f.reps; ++rep) {
    t_lookup.Add(f.ops, Timed(f.threads, f.ops, [&](size_t t, size_t b, size_t e) {
      std::span<float> mine = std::span<float>(out).subspan(t * f.batch * f.dim, f.batch * f.dim);
      InBatches(ops, b, e, f.batch,
                [&](std::span<const Key> k) { table.Pull(k, mine.first(k.size() * f.dim)); });
    }));
    b_lookup.Add(f.ops, Timed(f.threads, f.ops, [&](size_t t, size_t b, size_t e) {
      float* mine = &out[t * f.batch * f.dim];
      InBatches(ops, b, e, f.batch, [&](std::span<const Key> k) { base.Lookup(k, mine); });
    }));
    t_update.Add(f.ops, Timed(f.threads, f.ops, [&](size_t, size_t b, size_t e) {
      InBatches(ops, b, e, f.batch, [&](std::span<const Key> k) {
        table.Push(k, std::span<const float>(grads).first(k.size() * f.dim), kNow);
      });
    }));
    b_update.Add(f.ops, Timed(f.threads, f.ops, [&](size_t, size_t b, size_t e) {
      InBatches(ops, b, e, f.batch, [&](std::span<const Key> k) {
        if (f.threads == 1) return base.Update(k, grads.data());
        MutexLock lock(&base_mu);
        base.Update(k, grads.data());
      });
    }));
  }
  PrintRates("lookup", t_lookup, b_lookup);
  PrintRates("lookup+adagrad", t_update, b_update);

  const double payload = 2.0 * f.dim * sizeof(float);  // value + adagrad state
  const double t_bytes = static_cast<double>(table.memory_bytes()) / f.rows;
  const double b_bytes = static_cast<double>(base.memory_bytes()) / f.rows;
  std::printf("%-15s table %7.1f B/row (overhead %.1f: header %zu + index/slack %.1f)   "
              "baseline %7.1f B/row (overhead %.1f)   payload %.0f B/row\n",
              "memory", t_bytes, t_bytes - payload, sizeof(server::EmbeddingTable::RowHeader),
              t_bytes - payload - sizeof(server::EmbeddingTable::RowHeader), b_bytes,
              b_bytes - payload, payload);
  return 0;
}

}  // namespace

int RunTableBench(const std::vector<std::string>& args) {
  std::map<std::string, uint64_t> v = {
      {"rows", 10'000'000}, {"dim", 16}, {"threads", 1},  {"batch", 1024},
      {"ops", 2'000'000},   {"reps", 5}, {"stripes", 16}, {"deadlock_detection", 1}};
  std::string error;
  bool ok = ParseUintFlags(args, &v, &error);
  for (const char* name : {"rows", "dim", "threads", "batch", "ops", "reps", "stripes"}) {
    if (ok && v[name] == 0) {
      ok = false;
      error = std::string("--") + name + " must be > 0";
    }
  }
  if (!ok || v["rows"] > (1ull << 31) || v["dim"] > 4096) {
    std::fprintf(stderr,
                 "%s\nusage: table_bench [--rows N] [--dim D] [--threads T] [--batch B] "
                 "[--ops N] [--reps R] [--stripes S] [--deadlock_detection 0|1]\n",
                 error.empty() ? "rows <= 2^31, dim <= 4096" : error.c_str());
    return 2;
  }
  SetDeadlockDetection(v["deadlock_detection"]);
  return Run({v["rows"], v["dim"], v["threads"], v["batch"], v["ops"], v["reps"], v["stripes"]});
}

}  // namespace tessera::bench
