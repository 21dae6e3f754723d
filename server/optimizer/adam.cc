// Adam (Kingma & Ba 2015) with bias correction. Per dimension, with
// g' = g + l2 * w and t = step (the row's 1-based update count):
//   m = beta1 * m + (1 - beta1) * g'
//   v = beta2 * v + (1 - beta2) * g'^2
//   w -= lr * (m / (1 - beta1^t)) / (sqrt(v / (1 - beta2^t)) + epsilon)
// m and v start at 0. State layout: m[dim], then v[dim].
#include <algorithm>
#include <cmath>
#include <memory>

#include "server/optimizer/optimizer_impls.h"

namespace tessera::server::optimizer_internal {
namespace {

class AdamOptimizer final : public Optimizer {
 public:
  explicit AdamOptimizer(const OptimizerConfig& config)
      : lr_(config.learning_rate),
        beta1_(config.beta1),
        beta2_(config.beta2),
        epsilon_(config.epsilon),
        l2_(config.l2) {}

  int state_floats_per_dim() const override { return 2; }

  void InitState(std::span<float> state) const override {
    std::fill(state.begin(), state.end(), 0.0f);
  }

  void Update(std::span<float> value, std::span<float> state, std::span<const float> grad,
              uint32_t step) const override {
    const size_t dim = value.size();
    float* __restrict w = value.data();
    float* __restrict m = state.data();
    float* __restrict v = state.data() + dim;
    const float* __restrict g = grad.data();
    // The bias corrections depend only on the step: computed once per row,
    // in double so that 1 - beta^t keeps its digits for small t.
    const double t = std::max<uint32_t>(step, 1);
    const float c1 = static_cast<float>(1.0 / (1.0 - std::pow(double{beta1_}, t)));
    const float c2 = static_cast<float>(1.0 / (1.0 - std::pow(double{beta2_}, t)));
    const float lr = lr_, b1 = beta1_, b2 = beta2_, eps = epsilon_, l2 = l2_;
    for (size_t i = 0; i < dim; ++i) {
      const float gi = g[i] + l2 * w[i];
      const float mi = b1 * m[i] + (1.0f - b1) * gi;
      const float vi = b2 * v[i] + (1.0f - b2) * gi * gi;
      m[i] = mi;
      v[i] = vi;
      w[i] -= lr * (mi * c1) / (std::sqrt(vi * c2) + eps);
    }
  }

 private:
  const float lr_;
  const float beta1_;
  const float beta2_;
  const float epsilon_;
  const float l2_;
};

}  // namespace

std::unique_ptr<Optimizer> NewAdamOptimizer(const OptimizerConfig& config) {
  return std::make_unique<AdamOptimizer>(config);
}

}  // namespace tessera::server::optimizer_internal
