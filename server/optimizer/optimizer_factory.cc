// NewOptimizer(): validates the hyper-parameters a type uses, then dispatches
// to the implementation (monolith's optimizer_factory.cc without the throws).
#include <cmath>
#include <string>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "server/optimizer/optimizer.h"
#include "server/optimizer/optimizer_impls.h"

namespace tessera::server {
namespace {

Status Bad(const OptimizerConfig& config, const char* field, const char* rule,
           float value) {
  return InvalidArgumentError(absl::StrCat(std::string(OptimizerTypeName(config.type)), " optimizer: ", field,
                                           " must be ", rule, ", got ", value));
}

// Each check fails on NaN and infinities too.
Status Positive(const OptimizerConfig& c, const char* field, float v) {
  return std::isfinite(v) && v > 0 ? OkStatus() : Bad(c, field, "finite and > 0", v);
}
Status NonNegative(const OptimizerConfig& c, const char* field, float v) {
  return std::isfinite(v) && v >= 0 ? OkStatus() : Bad(c, field, "finite and >= 0", v);
}
Status Fraction(const OptimizerConfig& c, const char* field, float v) {
  return std::isfinite(v) && v >= 0 && v < 1 ? OkStatus() : Bad(c, field, "in [0, 1)", v);
}

// Only the fields a type uses are checked: the others are documented as
// ignored in common/table_config.h.
Status Validate(const OptimizerConfig& c) {
  TESSERA_RETURN_IF_ERROR(Positive(c, "learning_rate", c.learning_rate));
  TESSERA_RETURN_IF_ERROR(NonNegative(c, "l2", c.l2));
  switch (c.type) {
    case OptimizerType::kSgd:
      return OkStatus();
    case OptimizerType::kAdagrad:
      TESSERA_RETURN_IF_ERROR(NonNegative(c, "epsilon", c.epsilon));
      TESSERA_RETURN_IF_ERROR(NonNegative(c, "initial_accumulator", c.initial_accumulator));
      // A zero denominator on the first zero gradient would give NaN.
      return c.initial_accumulator + c.epsilon > 0
                 ? OkStatus()
                 : Bad(c, "initial_accumulator + epsilon", "> 0", 0.0f);
    case OptimizerType::kAdam:
      TESSERA_RETURN_IF_ERROR(Fraction(c, "beta1", c.beta1));
      TESSERA_RETURN_IF_ERROR(Fraction(c, "beta2", c.beta2));
      // v stays 0 on a dimension whose gradients are all 0, so epsilon == 0
      // would divide 0 by 0.
      return Positive(c, "epsilon", c.epsilon);
    case OptimizerType::kFtrl:
      TESSERA_RETURN_IF_ERROR(NonNegative(c, "ftrl_beta", c.ftrl_beta));
      TESSERA_RETURN_IF_ERROR(NonNegative(c, "initial_accumulator", c.initial_accumulator));
      return NonNegative(c, "l1", c.l1);
  }
  return InvalidArgumentError(
      absl::StrCat("unknown optimizer type ", static_cast<int>(c.type)));
}

}  // namespace

StatusOr<std::unique_ptr<Optimizer>> NewOptimizer(const OptimizerConfig& config) {
  TESSERA_RETURN_IF_ERROR(Validate(config));
  switch (config.type) {
    case OptimizerType::kSgd:
      return optimizer_internal::NewSgdOptimizer(config);
    case OptimizerType::kAdagrad:
      return optimizer_internal::NewAdagradOptimizer(config);
    case OptimizerType::kAdam:
      return optimizer_internal::NewAdamOptimizer(config);
    case OptimizerType::kFtrl:
      return optimizer_internal::NewFtrlOptimizer(config);
  }
  return InvalidArgumentError("unknown optimizer type");  // Unreachable: Validate checked.
}

}  // namespace tessera::server
