#include "models/layers/layer_norm.h"

#include <cassert>

namespace tessera::models::layers {
namespace {

using ConstRowVectorMap = Eigen::Map<const Eigen::RowVectorXf>;
using RowVectorMap = Eigen::Map<Eigen::RowVectorXf>;

}  // namespace

LayerNorm::LayerNorm(uint32_t dim, float epsilon) : dim_(dim), epsilon_(epsilon) {
  assert(dim > 0 && epsilon > 0);
}

void LayerNorm::AppendDenseBlocks(const std::string& prefix,
                                  std::vector<DenseBlock>* blocks) const {
  blocks->push_back({.name = prefix + ".gain", .size = dim_, .init_stddev = 0.0f});
  blocks->push_back({.name = prefix + ".bias", .size = dim_, .init_stddev = 0.0f});
}

const RowMatrix& LayerNorm::Forward(const RowMatrix& x,
                                    std::span<const std::span<const float>> params) {
  assert(x.cols() == static_cast<Eigen::Index>(dim_));
  assert(params.size() == 2 && params[0].size() == dim_ && params[1].size() == dim_);
  const ConstRowVectorMap gain(params[0].data(), dim_);
  const ConstRowVectorMap beta(params[1].data(), dim_);
  const float inv_dim = 1.0f / static_cast<float>(dim_);
  normalized_ = x.colwise() - x.rowwise().mean();
  inv_std_ = ((normalized_.array().square().rowwise().sum() * inv_dim) + epsilon_).rsqrt();
  normalized_.array().colwise() *= inv_std_.array();
  // y = normalized * (1 + gain) + beta.
  y_ = normalized_;
  y_.array().rowwise() *= (gain.array() + 1.0f);
  y_.rowwise() += beta;
  return y_;
}

void LayerNorm::Backward(const RowMatrix& dy, std::span<const std::span<const float>> params,
                         std::span<const std::span<float>> grads, RowMatrix* dx) {
  assert(dy.rows() == normalized_.rows() && dy.cols() == static_cast<Eigen::Index>(dim_));
  assert(params.size() == 2 && grads.size() == 2);
  assert(grads[0].size() == dim_ && grads[1].size() == dim_);
  const ConstRowVectorMap gain(params[0].data(), dim_);
  RowVectorMap(grads[0].data(), dim_) = dy.cwiseProduct(normalized_).colwise().sum();
  RowVectorMap(grads[1].data(), dim_) = dy.colwise().sum();
  if (dx == nullptr) return;
  // dn = dy * gamma; dx = inv_std * (dn - mean(dn) - normalized * mean(dn .* normalized)).
  const float inv_dim = 1.0f / static_cast<float>(dim_);
  dnormalized_ = dy;
  dnormalized_.array().rowwise() *= (gain.array() + 1.0f);
  mean_dn_ = dnormalized_.rowwise().sum() * inv_dim;
  mean_dn_n_ = dnormalized_.cwiseProduct(normalized_).rowwise().sum() * inv_dim;
  dx->resize(dy.rows(), dim_);
  dx->array() = (dnormalized_.array().colwise() - mean_dn_.array() -
                 normalized_.array().colwise() * mean_dn_n_.array())
                    .colwise() *
                inv_std_.array();
}

}  // namespace tessera::models::layers
