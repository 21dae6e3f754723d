// Plain SGD with L2: w -= lr * (g + l2 * w). No per-row state.
#include <algorithm>
#include <memory>

#include "server/optimizer/optimizer_impls.h"

namespace tessera::server::optimizer_internal {
namespace {

class SgdOptimizer final : public Optimizer {
 public:
  explicit SgdOptimizer(const OptimizerConfig& config)
      : lr_(config.learning_rate), l2_(config.l2) {}

  int state_floats_per_dim() const override { return 0; }

  void InitState(std::span<float> /*state*/) const override {}

  void Update(std::span<float> value, std::span<float> /*state*/, std::span<const float> grad,
              uint32_t /*step*/) const override {
    float* __restrict w = value.data();
    const float* __restrict g = grad.data();
    const size_t dim = value.size();
    const float lr = lr_, l2 = l2_;
    for (size_t i = 0; i < dim; ++i) w[i] -= lr * (g[i] + l2 * w[i]);
  }

 private:
  const float lr_;
  const float l2_;
};

}  // namespace

std::unique_ptr<Optimizer> NewSgdOptimizer(const OptimizerConfig& config) {
  return std::make_unique<SgdOptimizer>(config);
}

}  // namespace tessera::server::optimizer_internal
