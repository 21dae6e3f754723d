// FTRL-Proximal, per coordinate (McMahan et al. 2013, "Ad Click Prediction: a
// View from the Trenches", Algorithm 1), with alpha = learning_rate,
// beta = ftrl_beta, lambda1 = l1, lambda2 = l2:
//   sigma = (sqrt(n + g^2) - sqrt(n)) / alpha
//   z += g - sigma * w
//   n += g^2
//   w = |z| <= lambda1 ? 0
//       : -(z - sign(z) * lambda1) / ((beta + sqrt(n)) / alpha + lambda2)
// Choices (the paper leaves them open), the same as TensorFlow's ApplyFtrl
// with lr_power = -0.5:
//  - n starts at initial_accumulator (n0; the paper's n0 = 0 is allowed), z at 0.
//  - The row's value is w. It starts at the table's initializer value (the
//    paper's w = 0 is InitializerType::kZeros) and the first update uses it in
//    the sigma * w term; from then on w is recomputed from (z, n) after every
//    update and stored back in the value.
//  - lambda2 is not added to the gradient (it is already in the closed form).
// State layout: z[dim], then n[dim].
#include <algorithm>
#include <cmath>
#include <memory>

#include "server/optimizer/optimizer_impls.h"

namespace tessera::server::optimizer_internal {
namespace {

class FtrlOptimizer final : public Optimizer {
 public:
  explicit FtrlOptimizer(const OptimizerConfig& config)
      : inv_alpha_(1.0f / config.learning_rate),
        beta_(config.ftrl_beta),
        l1_(config.l1),
        l2_(config.l2),
        initial_accumulator_(config.initial_accumulator) {}

  int state_floats_per_dim() const override { return 2; }

  void InitState(std::span<float> state) const override {
    const size_t dim = state.size() / 2;
    std::fill(state.begin(), state.begin() + dim, 0.0f);
    std::fill(state.begin() + dim, state.end(), initial_accumulator_);
  }

  void Update(std::span<float> value, std::span<float> state, std::span<const float> grad,
              uint32_t /*step*/) const override {
    const size_t dim = value.size();
    float* __restrict w = value.data();
    float* __restrict z = state.data();
    float* __restrict n = state.data() + dim;
    const float* __restrict g = grad.data();
    const float inv_alpha = inv_alpha_, beta = beta_, l1 = l1_, l2 = l2_;
    for (size_t i = 0; i < dim; ++i) {
      const float gi = g[i];
      const float n_old = n[i];
      const float n_new = n_old + gi * gi;
      const float sqrt_new = std::sqrt(n_new);
      const float sigma = (sqrt_new - std::sqrt(n_old)) * inv_alpha;
      const float zi = z[i] + gi - sigma * w[i];
      z[i] = zi;
      n[i] = n_new;
      // When the denominator is 0 (beta = n = lambda2 = 0) z is 0 as well, so
      // the select below never keeps the 0/0.
      const float shrunk = -(zi - std::copysign(l1, zi)) / ((beta + sqrt_new) * inv_alpha + l2);
      w[i] = std::abs(zi) <= l1 ? 0.0f : shrunk;
    }
  }

 private:
  const float inv_alpha_;
  const float beta_;
  const float l1_;
  const float l2_;
  const float initial_accumulator_;
};

}  // namespace

std::unique_ptr<Optimizer> NewFtrlOptimizer(const OptimizerConfig& config) {
  return std::make_unique<FtrlOptimizer>(config);
}

}  // namespace tessera::server::optimizer_internal
