// Test helpers for the layers and models: schemas from YAML, Batches built by
// hand (examples as per-field key lists), dense parameters with seeded
// random values, and a central finite-difference gradient check.
#ifndef TESSERA_TESTS_MODELS_MODEL_TEST_UTIL_H_
#define TESSERA_TESTS_MODELS_MODEL_TEST_UTIL_H_

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

#include "absl/container/flat_hash_map.h"
#include "models/batch.h"
#include "models/model.h"
#include "models/schema.h"

namespace tessera::models::testing {

// Parses `yaml` or aborts the test binary (with the error).
inline Schema ParseSchemaOrDie(std::string_view yaml) {
  StatusOr<Schema> schema = Schema::Parse(yaml, "test schema");
  if (!schema.ok()) {
    ADD_FAILURE() << schema.status();
    std::abort();
  }
  return *std::move(schema);
}

struct TestExample {
  float label = 0;
  // keys[i]: the keys of the i-th categorical or sequence field in schema
  // order (numeric fields skipped); empty = missing.
  std::vector<std::vector<Key>> keys;
  std::vector<float> numeric;  // one value per numeric column
};

// One TableBatch per schema table (table_batch == table index), one
// FieldBatch per categorical/sequence field in schema order, keys unique per
// table in first-seen order. Values are zeros of keys x row_dim; see
// FillRandomValues.
inline Batch MakeBatch(const Schema& schema, const std::vector<TestExample>& examples,
                       uint32_t row_dim) {
  Batch batch;
  batch.size = static_cast<int>(examples.size());
  batch.tables.resize(schema.tables().size());
  for (size_t t = 0; t < batch.tables.size(); ++t) batch.tables[t].table = static_cast<int>(t);
  std::vector<absl::flat_hash_map<Key, uint32_t>> row_of(schema.tables().size());
  batch.numeric.resize(batch.size, schema.num_numeric());
  int sparse = 0;
  for (size_t f = 0; f < schema.fields().size(); ++f) {
    const Field& field = schema.fields()[f];
    if (field.type == FieldType::kNumeric) continue;
    FieldBatch fb;
    fb.field = static_cast<int>(f);
    fb.table_batch = field.table_index;
    fb.offsets.push_back(0);
    TableBatch& table = batch.tables[field.table_index];
    for (const TestExample& example : examples) {
      for (Key key : example.keys.at(sparse)) {
        auto [it, inserted] =
            row_of[field.table_index].try_emplace(key, static_cast<uint32_t>(table.keys.size()));
        if (inserted) table.keys.push_back(key);
        fb.rows.push_back(it->second);
      }
      fb.offsets.push_back(static_cast<uint32_t>(fb.rows.size()));
    }
    batch.fields.push_back(std::move(fb));
    ++sparse;
  }
  for (int i = 0; i < batch.size; ++i) {
    batch.labels.push_back(examples[i].label);
    for (int j = 0; j < schema.num_numeric(); ++j) batch.numeric(i, j) = examples[i].numeric.at(j);
  }
  for (TableBatch& table : batch.tables) {
    table.values = RowMatrix::Zero(static_cast<Eigen::Index>(table.keys.size()), row_dim);
  }
  return batch;
}

// Every table value ~ normal(0, stddev), in table/row/column order.
inline void FillRandomValues(Batch* batch, uint64_t seed, float stddev) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, stddev);
  for (TableBatch& table : batch->tables) {
    for (Eigen::Index r = 0; r < table.values.rows(); ++r) {
      for (Eigen::Index c = 0; c < table.values.cols(); ++c) table.values(r, c) = normal(rng);
    }
  }
}

// A rows x cols matrix of normal(0, stddev) values from `seed`.
inline RowMatrix Random(Eigen::Index rows, Eigen::Index cols, uint64_t seed, float stddev = 1.0f) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, stddev);
  RowMatrix m(rows, cols);
  for (Eigen::Index i = 0; i < m.size(); ++i) m.data()[i] = normal(rng);
  return m;
}

inline std::span<float> Span(RowMatrix& m) { return {m.data(), static_cast<size_t>(m.size())}; }
inline std::vector<float> Flat(const RowMatrix& m) { return {m.data(), m.data() + m.size()}; }

// sum(r .* m) in double: the objective whose gradient w.r.t. m is r.
inline double Dot(const RowMatrix& r, const RowMatrix& m) {
  return r.cast<double>().cwiseProduct(m.cast<double>()).sum();
}

// Values (and gradient buffers) of a model's dense blocks. Block i ~
// normal(0, init_stddev), or normal(0, zero_stddev) for blocks initialized to
// zeros (so gradient checks also see nonzero biases).
struct DenseParams {
  DenseParams(const std::vector<DenseBlock>& blocks, uint64_t seed, float zero_stddev = 0.0f) {
    std::mt19937_64 rng(seed);
    for (const DenseBlock& block : blocks) {
      const float stddev = block.init_stddev > 0 ? block.init_stddev : zero_stddev;
      std::normal_distribution<float> normal(0.0f, stddev > 0 ? stddev : 1.0f);
      std::vector<float>& v = values.emplace_back(block.size);
      for (float& x : v) x = stddev > 0 ? normal(rng) : 0.0f;
      grads.emplace_back(block.size, std::nanf(""));
    }
  }
  std::vector<std::span<const float>> in() const {
    return {values.begin(), values.end()};
  }
  std::vector<std::span<float>> out() { return {grads.begin(), grads.end()}; }

  std::vector<std::vector<float>> values;
  std::vector<std::vector<float>> grads;
};

// Central finite-difference check of one scalar parameter: `param` is
// perturbed by +-h and +-h/2 (and restored); `loss` evaluates the objective.
// Returns true if the analytic derivative matches the numeric one within
// rel * max(|a|, |n|) + abs_tol, n from the h/2 step. A mismatching
// coordinate where the two step sizes also disagree with each other (a ReLU
// kink inside the step) is reported through *skipped and counts as a match.
inline bool CheckDerivative(float* param, float analytic, const std::function<double()>& loss,
                            float h, double rel, double abs_tol, std::string* message,
                            bool* skipped) {
  const float saved = *param;
  auto numeric = [&](float step) {
    const float up_value = saved + step;
    const float down_value = saved - step;
    *param = up_value;
    const double up = loss();
    *param = down_value;
    const double down = loss();
    *param = saved;
    // The float steps actually taken, not the nominal 2 * step.
    return (up - down) / (static_cast<double>(up_value) - static_cast<double>(down_value));
  };
  const double n1 = numeric(h);
  const double n2 = numeric(h / 2);
  const auto close = [&](double a, double b) {
    return std::fabs(a - b) <= rel * std::max(std::fabs(a), std::fabs(b)) + abs_tol;
  };
  *skipped = false;
  if (close(analytic, n2)) return true;
  *skipped = !close(n1, n2);
  if (*skipped) return true;
  *message = "analytic " + std::to_string(analytic) + " numeric " + std::to_string(n2) +
             " (step h: " + std::to_string(n1) + ")";
  return false;
}

// Runs CheckDerivative on every element of `params` against `analytic`
// (same size), adding a test failure per mismatch (named by `what` and the
// index); allows 1 + 5% kink-skipped coordinates.
inline void ExpectGradientMatches(std::span<float> params, std::span<const float> analytic,
                                  const std::function<double()>& loss, const std::string& what,
                                  float h = 1e-2f, double rel = 1e-2, double abs_tol = 1e-4) {
  ASSERT_EQ(params.size(), analytic.size()) << what;
  size_t skipped_total = 0;
  for (size_t i = 0; i < params.size(); ++i) {
    std::string message;
    bool skipped = false;
    EXPECT_TRUE(CheckDerivative(&params[i], analytic[i], loss, h, rel, abs_tol, &message,
                                &skipped))
        << what << "[" << i << "]: " << message;
    skipped_total += skipped ? 1 : 0;
  }
  EXPECT_LE(skipped_total, 1 + params.size() / 20) << what << ": too many kinks";
}

}  // namespace tessera::models::testing

#endif  // TESSERA_TESTS_MODELS_MODEL_TEST_UTIL_H_
