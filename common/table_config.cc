#include "common/table_config.h"

#include <cmath>

namespace tessera {

std::string_view OptimizerTypeName(OptimizerType type) {
  switch (type) {
    case OptimizerType::kSgd:
      return "sgd";
    case OptimizerType::kAdagrad:
      return "adagrad";
    case OptimizerType::kAdam:
      return "adam";
    case OptimizerType::kFtrl:
      return "ftrl";
  }
  return "unknown";
}

bool ParseOptimizerType(std::string_view text, OptimizerType* type) {
  for (auto t : {OptimizerType::kSgd, OptimizerType::kAdagrad, OptimizerType::kAdam,
                 OptimizerType::kFtrl}) {
    if (text == OptimizerTypeName(t)) {
      *type = t;
      return true;
    }
  }
  return false;
}

std::string_view InitializerTypeName(InitializerType type) {
  switch (type) {
    case InitializerType::kZeros:
      return "zeros";
    case InitializerType::kUniform:
      return "uniform";
    case InitializerType::kNormal:
      return "normal";
  }
  return "unknown";
}

bool ParseInitializerType(std::string_view text, InitializerType* type) {
  for (auto t : {InitializerType::kZeros, InitializerType::kUniform, InitializerType::kNormal}) {
    if (text == InitializerTypeName(t)) {
      *type = t;
      return true;
    }
  }
  return false;
}

namespace {
Status Bad(const TableConfig& c, const std::string& what) {
  return InvalidArgumentError("table '" + c.name + "': " + what);
}
bool Finite(float v) { return std::isfinite(v); }
}  // namespace

Status ValidateTableConfig(const TableConfig& c) {
  if (c.name.empty()) return InvalidArgumentError("table " + std::to_string(c.id) + ": empty name");
  if (c.kind == TableKind::kSparse && (c.dim < 1 || c.dim > 4096)) {
    return Bad(c, "dim must be in 1..4096, got " + std::to_string(c.dim));
  }
  if (c.kind == TableKind::kDense && (c.size < 1 || c.size > (1ull << 32))) {
    return Bad(c, "dense size must be in 1..2^32, got " + std::to_string(c.size));
  }
  const OptimizerConfig& o = c.optimizer;
  if (!Finite(o.learning_rate) || o.learning_rate <= 0) return Bad(c, "optimizer lr must be > 0");
  if (!Finite(o.beta1) || o.beta1 < 0 || o.beta1 >= 1) return Bad(c, "optimizer beta1 must be in [0,1)");
  if (!Finite(o.beta2) || o.beta2 < 0 || o.beta2 >= 1) return Bad(c, "optimizer beta2 must be in [0,1)");
  if (!Finite(o.epsilon) || o.epsilon < 0) return Bad(c, "optimizer epsilon must be >= 0");
  if (!Finite(o.initial_accumulator) || o.initial_accumulator < 0) {
    return Bad(c, "optimizer initial_accumulator must be >= 0");
  }
  if (!Finite(o.ftrl_beta) || o.ftrl_beta < 0) return Bad(c, "optimizer beta (ftrl) must be >= 0");
  if (!Finite(o.l1) || o.l1 < 0) return Bad(c, "optimizer l1 must be >= 0");
  if (!Finite(o.l2) || o.l2 < 0) return Bad(c, "optimizer l2 must be >= 0");
  if (!Finite(c.initializer.scale) || c.initializer.scale < 0) {
    return Bad(c, "initializer scale must be >= 0");
  }
  if (o.type == OptimizerType::kAdagrad && o.initial_accumulator + o.epsilon <= 0) {
    return Bad(c, "adagrad needs initial_accumulator > 0 or epsilon > 0");
  }
  return OkStatus();
}

}  // namespace tessera
