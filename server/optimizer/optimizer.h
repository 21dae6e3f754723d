// Server-side optimizers. A table entry (row) holds its embedding value and
// the optimizer's per-row state side by side; the Optimizer object itself is
// immutable configuration plus arithmetic, shared by every row of a table.
//
// Thread safety: thread-safe (immutable after construction). Concurrent
// Update() calls on different rows need no locking; the caller serializes
// updates of one row (the embedding table's stripe lock does).
//
// Factory-only header: the implementations (sgd.cc, adagrad.cc, adam.cc,
// ftrl.cc) live in anonymous namespaces and are reached via NewOptimizer().
//
// Example:
//   TESSERA_ASSIGN_OR_RETURN(std::unique_ptr<Optimizer> opt, NewOptimizer(config));
//   std::vector<float> state(dim * opt->state_floats_per_dim());
//   opt->InitState(state);
//   opt->Update(value, state, grad, /*step=*/1);
#ifndef TESSERA_SERVER_OPTIMIZER_OPTIMIZER_H_
#define TESSERA_SERVER_OPTIMIZER_OPTIMIZER_H_

#include <cstdint>
#include <memory>
#include <span>

#include "common/status.h"
#include "common/table_config.h"

namespace tessera::server {

class Optimizer {
 public:
  virtual ~Optimizer() = default;

  // Floats of per-row state per embedding dimension: sgd 0, adagrad 1,
  // adam 2, ftrl 2. Layout: planar, i.e. state_floats_per_dim() arrays of dim
  // floats one after the other, where array j's element i belongs to
  // dimension i. Callers that update a slice of a row (DenseShard) rely on it.
  virtual int state_floats_per_dim() const = 0;

  // Writes the initial state of one row.
  // REQUIRES: state.size() == dim * state_floats_per_dim().
  virtual void InitState(std::span<float> state) const = 0;

  // Applies one gradient to one row in place. `step` is the 1-based number of
  // updates of this row including this one (adam's bias correction).
  // REQUIRES: grad.size() == value.size() == dim,
  //           state.size() == dim * state_floats_per_dim(), step >= 1.
  virtual void Update(std::span<float> value, std::span<float> state,
                      std::span<const float> grad, uint32_t step) const = 0;
};

// Returns the optimizer described by `config`, or InvalidArgument when a
// hyper-parameter is out of range (non-finite, learning_rate <= 0, betas
// outside [0, 1), negative epsilon / accumulator / l1 / l2 / ftrl_beta, an
// adagrad with initial_accumulator + epsilon == 0). Never throws.
StatusOr<std::unique_ptr<Optimizer>> NewOptimizer(const OptimizerConfig& config);

}  // namespace tessera::server

#endif  // TESSERA_SERVER_OPTIMIZER_OPTIMIZER_H_
