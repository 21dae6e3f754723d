// Internal to server/optimizer/: constructors of the concrete optimizers,
// called only by optimizer_factory.cc after it validated the config. Everyone
// else uses NewOptimizer() from optimizer.h.
#ifndef TESSERA_SERVER_OPTIMIZER_OPTIMIZER_IMPLS_H_
#define TESSERA_SERVER_OPTIMIZER_OPTIMIZER_IMPLS_H_

#include <memory>

#include "common/table_config.h"
#include "server/optimizer/optimizer.h"

namespace tessera::server::optimizer_internal {

// REQUIRES (each): `config` passed NewOptimizer's validation for its type.
std::unique_ptr<Optimizer> NewSgdOptimizer(const OptimizerConfig& config);
std::unique_ptr<Optimizer> NewAdagradOptimizer(const OptimizerConfig& config);
std::unique_ptr<Optimizer> NewAdamOptimizer(const OptimizerConfig& config);
std::unique_ptr<Optimizer> NewFtrlOptimizer(const OptimizerConfig& config);

}  // namespace tessera::server::optimizer_internal

#endif  // TESSERA_SERVER_OPTIMIZER_OPTIMIZER_IMPLS_H_
