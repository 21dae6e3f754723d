#include "models/layers/self_attention.h"

#include <cassert>
#include <cmath>

#include "models/layers/linear.h"
#include "models/layers/masked_softmax.h"

namespace tessera::models::layers {
namespace {

using ConstMatrixMap = Eigen::Map<const RowMatrix>;

}  // namespace

SelfAttention::SelfAttention(uint32_t dim, uint32_t heads) : dim_(dim), heads_(heads) {
  assert(dim > 0 && heads > 0 && dim % heads == 0);
}

void SelfAttention::AppendDenseBlocks(const std::string& prefix,
                                      std::vector<DenseBlock>* blocks) const {
  const uint64_t d = dim_;
  const float stddev = static_cast<float>(std::sqrt(1.0 / d));
  for (const char* name : {"query", "key", "value", "output"}) {
    const std::string base = prefix + "." + name;
    blocks->push_back({.name = base + ".weight", .size = d * d, .init_stddev = stddev});
    blocks->push_back({.name = base + ".bias", .size = d, .init_stddev = 0.0f});
  }
}

const RowMatrix& SelfAttention::Forward(const RowMatrix& x, std::span<const uint32_t> lengths,
                                        std::span<const std::span<const float>> params) {
  assert(x.cols() == static_cast<Eigen::Index>(dim_));
  assert(static_cast<int>(params.size()) == num_dense_blocks());
  const Eigen::Index batch = static_cast<Eigen::Index>(lengths.size());
  const Eigen::Index len_max = batch == 0 ? 0 : x.rows() / batch;
  assert(len_max * batch == x.rows());
  lengths_.assign(lengths.begin(), lengths.end());
  max_length_ = static_cast<int>(len_max);

  LinearForward(x, params[0], params[1], &q_);
  LinearForward(x, params[2], params[3], &k_);
  LinearForward(x, params[4], params[5], &v_);
  const Eigen::Index dh = head_dim();
  const float scale = 1.0f / std::sqrt(static_cast<float>(dh));
  probs_.resize(batch * heads_ * len_max, len_max);
  context_.setZero(x.rows(), dim_);
  for (Eigen::Index i = 0; i < batch; ++i) {
    const Eigen::Index len = lengths[i];
    assert(len <= len_max);
    const Eigen::Index row = i * len_max;
    for (Eigen::Index h = 0; h < heads_; ++h) {
      auto p = probs_.middleRows((i * heads_ + h) * len_max, len_max);
      p.bottomRows(len_max - len).setZero();  // padding queries attend to nothing
      if (len == 0) continue;
      p.topLeftCorner(len, len).noalias() =
          scale * (q_.block(row, h * dh, len, dh) * k_.block(row, h * dh, len, dh).transpose());
      MaskedSoftmax(p.topRows(len), static_cast<uint32_t>(len));
      context_.block(row, h * dh, len, dh).noalias() =
          p.topLeftCorner(len, len) * v_.block(row, h * dh, len, dh);
    }
  }
  LinearForward(context_, params[6], params[7], &y_);
  return y_;
}

void SelfAttention::Backward(const RowMatrix& x, const RowMatrix& dy,
                             std::span<const std::span<const float>> params,
                             std::span<const std::span<float>> grads, RowMatrix* dx) {
  assert(static_cast<int>(params.size()) == num_dense_blocks());
  assert(static_cast<int>(grads.size()) == num_dense_blocks());
  assert(dy.rows() == x.rows() && dy.cols() == static_cast<Eigen::Index>(dim_));
  assert(x.rows() == q_.rows());
  LinearBackward(context_, dy, params[6], grads[6], grads[7], &dcontext_);

  const Eigen::Index len_max = max_length_;
  const Eigen::Index dh = head_dim();
  const float scale = 1.0f / std::sqrt(static_cast<float>(dh));
  dq_.setZero(x.rows(), dim_);
  dk_.setZero(x.rows(), dim_);
  dv_.setZero(x.rows(), dim_);
  dscores_.resize(len_max, len_max);
  for (Eigen::Index i = 0; i < static_cast<Eigen::Index>(lengths_.size()); ++i) {
    const Eigen::Index len = lengths_[i];
    if (len == 0) continue;
    const Eigen::Index row = i * len_max;
    for (Eigen::Index h = 0; h < heads_; ++h) {
      const auto p = probs_.block((i * heads_ + h) * len_max, 0, len, len);
      const auto dcontext = dcontext_.block(row, h * dh, len, dh);
      auto dscores = dscores_.topLeftCorner(len, len);
      dv_.block(row, h * dh, len, dh).noalias() = p.transpose() * dcontext;
      dscores.noalias() = dcontext * v_.block(row, h * dh, len, dh).transpose();
      MaskedSoftmaxBackward(p, dscores);  // now d(loss)/d(scaled scores)
      dq_.block(row, h * dh, len, dh).noalias() =
          scale * (dscores * k_.block(row, h * dh, len, dh));
      dk_.block(row, h * dh, len, dh).noalias() =
          scale * (dscores.transpose() * q_.block(row, h * dh, len, dh));
    }
  }
  LinearBackward(x, dq_, params[0], grads[0], grads[1], dx);
  LinearBackward(x, dk_, params[2], grads[2], grads[3], nullptr);
  LinearBackward(x, dv_, params[4], grads[4], grads[5], nullptr);
  if (dx != nullptr) {
    dx->noalias() += dk_ * ConstMatrixMap(params[2].data(), dim_, dim_).transpose();
    dx->noalias() += dv_ * ConstMatrixMap(params[4].data(), dim_, dim_).transpose();
  }
}

float SelfAttention::attention(int example, int head, int query, int key) const {
  assert(example >= 0 && example < batch_size());
  assert(head >= 0 && head < static_cast<int>(heads_));
  assert(query >= 0 && query < max_length_ && key >= 0 && key < max_length_);
  return probs_((static_cast<Eigen::Index>(example) * heads_ + head) * max_length_ + query, key);
}

void SelfAttention::HeadAveragedAttention(int example, int query,
                                          std::span<float> weights) const {
  assert(example >= 0 && example < batch_size());
  assert(query >= 0 && query < max_length_);
  assert(static_cast<int>(weights.size()) == max_length_);
  Eigen::Map<Eigen::RowVectorXf> out(weights.data(), max_length_);
  out.setZero();
  const Eigen::Index first = static_cast<Eigen::Index>(example) * heads_ * max_length_ + query;
  for (Eigen::Index h = 0; h < heads_; ++h) out += probs_.row(first + h * max_length_);
  out /= static_cast<float>(heads_);
}

}  // namespace tessera::models::layers
