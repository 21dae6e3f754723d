// Adagrad (Duchi et al. 2011), the CTR workhorse. Per dimension, with
// g' = g + l2 * w:
//   G += g'^2;  w -= lr * g' / (sqrt(G) + epsilon)
// G starts at initial_accumulator (TensorFlow's convention, default 0.1).
// State layout: G[dim].
#include <algorithm>
#include <cmath>
#include <memory>

#include "server/optimizer/optimizer_impls.h"

namespace tessera::server::optimizer_internal {
namespace {

class AdagradOptimizer final : public Optimizer {
 public:
  explicit AdagradOptimizer(const OptimizerConfig& config)
      : lr_(config.learning_rate),
        l2_(config.l2),
        epsilon_(config.epsilon),
        initial_accumulator_(config.initial_accumulator) {}

  int state_floats_per_dim() const override { return 1; }

  void InitState(std::span<float> state) const override {
    std::fill(state.begin(), state.end(), initial_accumulator_);
  }

  void Update(std::span<float> value, std::span<float> state, std::span<const float> grad,
              uint32_t /*step*/) const override {
    float* __restrict w = value.data();
    float* __restrict acc = state.data();
    const float* __restrict g = grad.data();
    const size_t dim = value.size();
    const float lr = lr_, l2 = l2_, eps = epsilon_;
    for (size_t i = 0; i < dim; ++i) {
      const float gi = g[i] + l2 * w[i];
      const float a = acc[i] + gi * gi;
      acc[i] = a;
      w[i] -= lr * gi / (std::sqrt(a) + eps);
    }
  }

 private:
  const float lr_;
  const float l2_;
  const float epsilon_;
  const float initial_accumulator_;
};

}  // namespace

std::unique_ptr<Optimizer> NewAdagradOptimizer(const OptimizerConfig& config) {
  return std::make_unique<AdagradOptimizer>(config);
}

}  // namespace tessera::server::optimizer_internal
