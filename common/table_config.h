// Configuration of one parameter table, as the scheduler sends it to servers
// (protocols/ carries it on the wire) and as servers apply it. Defaults are
// the documented defaults of the job file.
#ifndef TESSERA_COMMON_TABLE_CONFIG_H_
#define TESSERA_COMMON_TABLE_CONFIG_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"
#include "common/types.h"

namespace tessera {

enum class OptimizerType : uint8_t { kSgd = 0, kAdagrad = 1, kAdam = 2, kFtrl = 3 };
std::string_view OptimizerTypeName(OptimizerType type);
bool ParseOptimizerType(std::string_view text, OptimizerType* type);

// Hyper-parameters of a server-side optimizer. Fields a type does not use are
// ignored. `l2` is L2 regularization added to the gradient (g + l2 * w) for
// sgd/adagrad/adam; for ftrl it is FTRL-Proximal's lambda2.
struct OptimizerConfig {
  OptimizerType type = OptimizerType::kSgd;
  float learning_rate = 0.01f;       // sgd, adagrad, adam; ftrl's alpha
  float beta1 = 0.9f;                // adam
  float beta2 = 0.999f;              // adam
  float epsilon = 1e-8f;             // adam; adagrad adds it inside the sqrt-denominator
  float initial_accumulator = 0.1f;  // adagrad: G0; ftrl: n0
  float ftrl_beta = 1.0f;            // ftrl
  float l1 = 0.0f;                   // ftrl lambda1
  float l2 = 0.0f;

  friend bool operator==(const OptimizerConfig&, const OptimizerConfig&) = default;
};

enum class InitializerType : uint8_t { kZeros = 0, kUniform = 1, kNormal = 2 };
std::string_view InitializerTypeName(InitializerType type);
bool ParseInitializerType(std::string_view text, InitializerType* type);

// A row's initial value is a pure function of (seed, table id, key, index),
// so it never depends on which server holds the key.
struct InitializerConfig {
  InitializerType type = InitializerType::kUniform;
  float scale = 0.01f;  // uniform: values in [-scale, scale]; normal: stddev
  uint64_t seed = 0;

  friend bool operator==(const InitializerConfig&, const InitializerConfig&) = default;
};

// Feature admission; min_count 0 or 1 means off. A key without a row (not
// admitted yet, evicted, or never pushed) reads as its initial value, or as
// zeros with unadmitted_zeros (admission on only).
struct AdmissionConfig {
  uint32_t min_count = 0;
  bool unadmitted_zeros = false;
  // Whether keys without a row read as zeros (admission on and asked for).
  bool missing_reads_zero() const { return min_count > 1 && unadmitted_zeros; }
  friend bool operator==(const AdmissionConfig&, const AdmissionConfig&) = default;
};
struct EvictionConfig {
  uint32_t ttl_s = 0;
  uint64_t max_rows = 0;
  friend bool operator==(const EvictionConfig&, const EvictionConfig&) = default;
};

enum class TableKind : uint8_t { kSparse = 0, kDense = 1 };

struct TableConfig {
  TableId id = 0;
  std::string name;
  TableKind kind = TableKind::kSparse;
  uint32_t dim = 8;   // sparse: floats per row
  uint64_t size = 0;  // dense: total floats across all servers
  OptimizerConfig optimizer;
  InitializerConfig initializer;
  AdmissionConfig admission;
  EvictionConfig eviction;

  friend bool operator==(const TableConfig&, const TableConfig&) = default;
};

// Checks ranges (dim 1..4096, positive learning rate, betas in [0,1), ...).
// Errors name the table and the offending field.
Status ValidateTableConfig(const TableConfig& config);

}  // namespace tessera

#endif  // TESSERA_COMMON_TABLE_CONFIG_H_
