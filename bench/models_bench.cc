#include "bench/models_bench.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <memory>
#include <random>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/status.h"
#include "common/types.h"
#include "models/batch.h"
#include "models/model.h"
#include "models/schema.h"

namespace tessera::bench {
namespace {

using Clock = std::chrono::steady_clock;
using models::Batch;
using models::RowMatrix;

constexpr int kDistinctBatches = 8;  // cycled, so the loop is not one hot batch
constexpr float kLearningRate = 1e-3f;

struct Flags {
  std::vector<std::string> models = {"lr", "fm", "deepfm"};
  uint64_t batch = 1024, fields = 26, numeric = 0, dim = 16, vocab = 100000, iters = 30,
           reps = 5;
  std::vector<uint32_t> hidden = {256, 128};
};

bool ParseUint(const std::string& text, uint64_t* out) {
  char* end = nullptr;
  const unsigned long long v = std::strtoull(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0') return false;
  *out = v;
  return true;
}

bool ParseFlags(const std::vector<std::string>& args, Flags* flags, std::string* error) {
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
    bool ok = true;
    if (name == "models") {
      flags->models = absl::StrSplit(text, ',', absl::SkipEmpty());
      ok = !flags->models.empty();
    } else if (name == "hidden") {
      flags->hidden.clear();
      for (const std::string& part :
           std::vector<std::string>(absl::StrSplit(text, ',', absl::SkipEmpty()))) {
        uint64_t width = 0;
        ok = ok && ParseUint(part, &width) && width > 0;
        flags->hidden.push_back(static_cast<uint32_t>(width));
      }
    } else {
      uint64_t* field = name == "batch"     ? &flags->batch
                        : name == "fields"  ? &flags->fields
                        : name == "numeric" ? &flags->numeric
                        : name == "dim"     ? &flags->dim
                        : name == "vocab"   ? &flags->vocab
                        : name == "iters"   ? &flags->iters
                        : name == "reps"    ? &flags->reps
                                            : nullptr;
      ok = field != nullptr && ParseUint(text, field) && (*field > 0 || name == "numeric");
    }
    if (!ok) {
      *error = "bad flag --" + name + " '" + text + "'";
      return false;
    }
  }
  return true;
}

std::string SchemaYaml(const Flags& flags) {
  std::string yaml = "fields:\n";
  for (uint64_t f = 0; f < flags.numeric; ++f) {
    yaml += "  - {name: n" + std::to_string(f) + ", type: numeric}\n";
  }
  for (uint64_t f = 0; f < flags.fields; ++f) {
    yaml += "  - {name: c" + std::to_string(f) + ", type: categorical}\n";
  }
  return yaml;
}

// A synthetic batch for `schema`: log-uniform key popularity per field (a
// heavy head, as in click logs), 5% missing, numeric ~ |normal|, labels with
// a 25% click rate; table rows ~ normal(0, 0.01).
Batch MakeBatch(const models::Schema& schema, const Flags& flags, uint32_t row_dim,
                std::mt19937_64& rng) {
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  const int n = static_cast<int>(flags.batch);
  Batch batch;
  batch.size = n;
  batch.numeric.resize(n, schema.num_numeric());
  for (int i = 0; i < n; ++i) {
    batch.labels.push_back(uniform(rng) < 0.25 ? 1.0f : 0.0f);
    for (int j = 0; j < schema.num_numeric(); ++j) batch.numeric(i, j) = std::fabs(normal(rng));
  }
  batch.tables.resize(schema.tables().size());
  for (size_t f = 0; f < schema.fields().size(); ++f) {
    const models::Field& field = schema.fields()[f];
    if (field.type == models::FieldType::kNumeric) continue;
    models::TableBatch& table = batch.tables[field.table_index];
    table.table = field.table_index;
    absl::flat_hash_map<Key, uint32_t> row_of;
    models::FieldBatch fb;
    fb.field = static_cast<int>(f);
    fb.table_batch = field.table_index;
    fb.offsets.push_back(0);
    for (int i = 0; i < n; ++i) {
      if (uniform(rng) >= 0.05) {
        const auto id = static_cast<Key>(std::pow(static_cast<double>(flags.vocab), uniform(rng)));
        const Key key = (Key{f} << 40) | id;
        auto [it, inserted] = row_of.try_emplace(key, static_cast<uint32_t>(table.keys.size()));
        if (inserted) table.keys.push_back(key);
        fb.rows.push_back(it->second);
      }
      fb.offsets.push_back(static_cast<uint32_t>(fb.rows.size()));
    }
    batch.fields.push_back(std::move(fb));
  }
  for (models::TableBatch& table : batch.tables) {
    table.values.resize(static_cast<Eigen::Index>(table.keys.size()), row_dim);
    for (Eigen::Index i = 0; i < table.values.size(); ++i) {
      table.values.data()[i] = 0.01f * normal(rng);
    }
  }
  return batch;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}


double ThreadCpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

// Samples per second of wall time and of this thread's CPU time (which
// leaves out time the thread waited for a core on a busy machine).
struct Rate {
  double wall = 0;
  double cpu = 0;
};

// Times `step(batch index)` over flags.iters batches per repetition; medians.
template <typename Step>
Rate SamplesPerSecond(const Flags& flags, Step step) {
  for (int w = 0; w < 3; ++w) step(w);  // warm the scratch buffers and caches
  std::vector<double> wall, cpu;
  for (uint64_t r = 0; r < flags.reps; ++r) {
    const Clock::time_point start = Clock::now();
    const double cpu_start = ThreadCpuSeconds();
    for (uint64_t i = 0; i < flags.iters; ++i) step(static_cast<int>(i));
    const double cpu_seconds = ThreadCpuSeconds() - cpu_start;
    const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
    const auto samples = static_cast<double>(flags.iters * flags.batch);
    wall.push_back(samples / seconds);
    cpu.push_back(samples / cpu_seconds);
  }
  return {.wall = Median(wall), .cpu = Median(cpu)};
}

struct Result {
  Rate train;
  Rate predict;
  float last_loss = 0;
  size_t unique_rows = 0;  // per batch, all tables
};

StatusOr<Result> BenchModel(const std::string& type, const models::Schema& schema,
                            const Flags& flags) {
  const models::ModelConfig config{.type = type,
                                   .embedding_dim = static_cast<uint32_t>(flags.dim),
                                   .hidden = flags.hidden};
  TESSERA_ASSIGN_OR_RETURN(std::unique_ptr<models::Model> model, models::NewModel(config, schema));
  std::mt19937_64 rng(1);
  std::vector<Batch> batches;
  Result result;
  for (int b = 0; b < kDistinctBatches; ++b) {
    batches.push_back(MakeBatch(schema, flags, model->row_dim(), rng));
  }
  for (const models::TableBatch& t : batches[0].tables) result.unique_rows += t.keys.size();

  std::vector<std::vector<float>> values, grads;
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (const models::DenseBlock& block : model->dense_blocks()) {
    std::vector<float>& v = values.emplace_back(block.size);
    for (float& x : v) x = block.init_stddev * normal(rng);
    grads.emplace_back(block.size);
  }
  const std::vector<std::span<const float>> dense(values.begin(), values.end());
  const std::vector<std::span<float>> dense_grads(grads.begin(), grads.end());
  std::vector<float> predictions(flags.batch);

  result.train = SamplesPerSecond(flags, [&](int i) {
    Batch& batch = batches[i % kDistinctBatches];
    result.last_loss = model->TrainStep(&batch, dense, dense_grads, predictions);
    for (size_t b = 0; b < values.size(); ++b) {
      for (size_t j = 0; j < values[b].size(); ++j) values[b][j] -= kLearningRate * grads[b][j];
    }
    for (models::TableBatch& table : batch.tables) table.values -= kLearningRate * table.grads;
  });
  result.predict = SamplesPerSecond(flags, [&](int i) {
    model->Predict(batches[i % kDistinctBatches], dense, predictions);
  });
  return result;
}

}  // namespace

int RunModelsBench(const std::vector<std::string>& args) {
  Flags flags;
  std::string error;
  if (!ParseFlags(args, &flags, &error)) {
    std::fprintf(stderr,
                 "%s\nusage: models_bench [--models lr,fm,deepfm] [--batch B] [--fields F] "
                 "[--numeric N] [--dim K] [--hidden 256,128] [--vocab V] [--iters N] "
                 "[--reps R]\n",
                 error.c_str());
    return 2;
  }
  StatusOr<models::Schema> schema = models::Schema::Parse(SchemaYaml(flags), "models_bench");
  if (!schema.ok()) {
    std::fprintf(stderr, "models_bench: %s\n", schema.status().ToString().c_str());
    return 1;
  }
  std::printf("batch %llu, %llu categorical + %llu numeric fields, dim %llu, deepfm hidden %s, "
              "%llu batches x %llu reps (median), one thread\n",
              static_cast<unsigned long long>(flags.batch),
              static_cast<unsigned long long>(flags.fields),
              static_cast<unsigned long long>(flags.numeric),
              static_cast<unsigned long long>(flags.dim), absl::StrJoin(flags.hidden, ",").c_str(),
              static_cast<unsigned long long>(flags.iters),
              static_cast<unsigned long long>(flags.reps));
  std::printf("samples/s of wall time, and of the thread's CPU time in parentheses\n");
  std::printf("%-8s %24s %24s %10s %11s\n", "model", "train loop samples/s", "predict samples/s",
              "ms/batch", "rows/batch");
  for (const std::string& type : flags.models) {
    StatusOr<Result> r = BenchModel(type, *schema, flags);
    if (!r.ok()) {
      std::fprintf(stderr, "models_bench: %s: %s\n", type.c_str(),
                   r.status().ToString().c_str());
      return 1;
    }
    std::printf("%-8s %11.0f (%10.0f) %11.0f (%10.0f) %10.2f %11zu\n", type.c_str(),
                r->train.wall, r->train.cpu, r->predict.wall, r->predict.cpu,
                1e3 * static_cast<double>(flags.batch) / r->train.wall, r->unique_rows);
    std::fflush(stdout);
  }
  return 0;
}

}  // namespace tessera::bench

#ifdef TESSERA_MODELS_BENCH_MAIN
int main(int argc, char** argv) {
  return tessera::bench::RunModelsBench(std::vector<std::string>(argv + 1, argv + argc));
}
#endif
