#include "models/layers/din_attention.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <utility>

#include "models/layers/linear.h"

namespace tessera::models::layers {

std::optional<DinAttention::Weights> DinAttention::ParseWeights(std::string_view name) {
  if (name == "raw") return Weights::kRaw;
  if (name == "sigmoid") return Weights::kSigmoid;
  if (name == "softmax") return Weights::kSoftmax;
  return std::nullopt;
}

namespace {

using ConstMatrixMap = Eigen::Map<const RowMatrix>;
using MatrixMap = Eigen::Map<RowMatrix>;

// The MLP after the first layer: hidden[1..] then the score (absent when
// the first layer is the score itself).
std::optional<Mlp> RestOf(const std::vector<uint32_t>& hidden) {
  if (hidden.empty()) return std::nullopt;
  return Mlp(hidden[0], std::vector<uint32_t>(hidden.begin() + 1, hidden.end()), 1);
}

}  // namespace

DinAttention::DinAttention(uint32_t dim, std::vector<uint32_t> hidden, Weights weights)
    : dim_(static_cast<int>(dim)),
      mode_(weights),
      width_(hidden.empty() ? 1 : static_cast<int>(hidden[0])),
      mlp_(4 * dim, hidden, 1),
      rest_(RestOf(hidden)) {}

// The first layer z = [h, t, h - t, h * t] W + b, with W's row blocks Wa, Wb,
// Wc, Wd (d rows each), is computed as
//   z = [h, h * t] [Wa + Wc; Wd] + t (Wb - Wc) + b,
// the t term once per example: half the per-token work of the plain GEMM.
void DinAttention::FirstLayerForward(std::span<const float> weight, std::span<const float> bias) {
  const int d = dim_;
  const int w = width_;
  const ConstMatrixMap full(weight.data(), 4 * d, w);
  fused_.resize(2 * d, w);
  fused_.topRows(d) = full.middleRows(0, d) + full.middleRows(2 * d, d);
  fused_.bottomRows(d) = full.middleRows(3 * d, d);
  target_weight_ = full.middleRows(d, d) - full.middleRows(2 * d, d);
  target_term_.noalias() = t_ * target_weight_;
  z_.resize(x_.rows(), w);
  z_.noalias() = x_ * fused_;
  const Eigen::Map<const Eigen::RowVectorXf> b(bias.data(), w);
  for (Eigen::Index i = 0; i + 1 < static_cast<Eigen::Index>(offsets_.size()); ++i) {
    for (uint32_t k = offsets_[i]; k < offsets_[i + 1]; ++k) {
      z_.row(k) += target_term_.row(i) + b;
    }
  }
  if (rest_) ReluForward(&z_);
}

void DinAttention::Forward(const FieldBatch& history, const RowMatrix& values, int first,
                           const Eigen::Ref<const RowMatrix>& target,
                           std::span<const std::span<const float>> params,
                           Eigen::Ref<RowMatrix> pooled) {
  const int d = dim_;
  const auto batch = static_cast<Eigen::Index>(history.offsets.size()) - 1;
  assert(target.rows() == batch && target.cols() == d);
  assert(pooled.rows() == batch && pooled.cols() == d);
  assert(first >= 0 && first + d <= values.cols());
  offsets_ = history.offsets;
  t_ = target;
  const auto tokens = static_cast<Eigen::Index>(history.rows.size());
  h_.resize(tokens, d);
  x_.resize(tokens, 2 * d);
  for (Eigen::Index i = 0; i < batch; ++i) {
    const float* t = t_.data() + i * d;
    for (uint32_t k = history.offsets[i]; k < history.offsets[i + 1]; ++k) {
      assert(history.rows[k] < values.rows());
      const float* h = values.data() + history.rows[k] * values.cols() + first;
      float* x = x_.data() + static_cast<Eigen::Index>(k) * 2 * d;
      std::copy_n(h, d, h_.data() + static_cast<Eigen::Index>(k) * d);
      for (int c = 0; c < d; ++c) {
        x[c] = h[c];
        x[d + c] = h[c] * t[c];
      }
    }
  }
  weights_.resize(tokens);
  if (tokens > 0) {
    FirstLayerForward(params[0], params[1]);
    const RowMatrix& scores = rest_ ? rest_->Forward(z_, params.subspan(2)) : z_;
    std::copy_n(scores.data(), tokens, weights_.data());
  }
  for (Eigen::Index i = 0; i < batch; ++i) {
    const uint32_t begin = history.offsets[i];
    const uint32_t end = history.offsets[i + 1];
    if (mode_ == Weights::kSigmoid) {
      for (uint32_t k = begin; k < end; ++k) weights_[k] = 1.0f / (1.0f + std::exp(-weights_[k]));
    } else if (mode_ == Weights::kSoftmax && begin < end) {
      const float top = *std::max_element(weights_.begin() + begin, weights_.begin() + end);
      float sum = 0;
      for (uint32_t k = begin; k < end; ++k) sum += weights_[k] = std::exp(weights_[k] - top);
      for (uint32_t k = begin; k < end; ++k) weights_[k] /= sum;
    }
    auto out = pooled.row(i);
    out.setZero();
    for (uint32_t k = begin; k < end; ++k) out += weights_[k] * h_.row(k);
  }
}

void DinAttention::Backward(const Eigen::Ref<const RowMatrix>& dpooled,
                            std::span<const std::span<const float>> params,
                            std::span<const std::span<float>> grads,
                            Eigen::Ref<RowMatrix> dtarget) {
  const int d = dim_;
  const auto batch = static_cast<Eigen::Index>(offsets_.size()) - 1;
  const auto tokens = h_.rows();
  assert(dpooled.rows() == batch && dtarget.rows() == batch);
  // pooled_i = sum_k w_k h_k: dw_k = <dpooled_i, h_k>, dh_k = w_k dpooled_i.
  dscores_.resize(tokens, 1);
  dh_.resize(tokens, d);
  for (Eigen::Index i = 0; i < batch; ++i) {
    const uint32_t begin = offsets_[i];
    const uint32_t end = offsets_[i + 1];
    for (uint32_t k = begin; k < end; ++k) {
      dscores_(k, 0) = dpooled.row(i).dot(h_.row(k));
      dh_.row(k) = weights_[k] * dpooled.row(i);
    }
    if (mode_ == Weights::kSigmoid) {
      for (uint32_t k = begin; k < end; ++k) {
        dscores_(k, 0) *= weights_[k] * (1.0f - weights_[k]);
      }
    } else if (mode_ == Weights::kSoftmax && begin < end) {
      // d(score_k) = w_k * (dw_k - sum_j w_j dw_j).
      float mean = 0;
      for (uint32_t k = begin; k < end; ++k) mean += weights_[k] * dscores_(k, 0);
      for (uint32_t k = begin; k < end; ++k) dscores_(k, 0) = weights_[k] * (dscores_(k, 0) - mean);
    }
  }
  if (tokens == 0) {
    for (const std::span<float>& g : grads) std::fill(g.begin(), g.end(), 0.0f);
    return;
  }
  // Down to dz = d(loss)/d(first layer's pre-activation).
  if (rest_) {
    rest_->Backward(z_, dscores_, params.subspan(2), grads.subspan(2), &dz_);
    ReluBackward(z_, &dz_);
  } else {
    dz_ = dscores_;
  }
  // Per example: the sum of its tokens' dz (the t term's gradient).
  dz_sum_.setZero(batch, width_);
  for (Eigen::Index i = 0; i < batch; ++i) {
    for (uint32_t k = offsets_[i]; k < offsets_[i + 1]; ++k) dz_sum_.row(i) += dz_.row(k);
  }
  // W = [Wa; Wb; Wc; Wd]: dWa = h^T dz, dWb = t^T dz_sum, dWc = dWa - dWb,
  // dWd = (h * t)^T dz.
  const int w = width_;
  MatrixMap dweight(grads[0].data(), 4 * d, w);
  fused_grad_.noalias() = x_.transpose() * dz_;
  dweight.middleRows(0, d) = fused_grad_.topRows(d);
  dweight.middleRows(d, d).noalias() = t_.transpose() * dz_sum_;
  dweight.middleRows(2 * d, d) = dweight.middleRows(0, d) - dweight.middleRows(d, d);
  dweight.middleRows(3 * d, d) = fused_grad_.bottomRows(d);
  Eigen::Map<Eigen::RowVectorXf>(grads[1].data(), w) = dz_sum_.colwise().sum();
  // d[h, h * t] = dz [Wa + Wc; Wd]^T; dt = dz_sum (Wb - Wc)^T + sum_k d(h*t)_k * h_k.
  dx_.noalias() = dz_ * fused_.transpose();
  dtarget_.noalias() = dz_sum_ * target_weight_.transpose();
  for (Eigen::Index i = 0; i < batch; ++i) {
    const float* t = t_.data() + i * d;
    float* dt = dtarget.data() + i * dtarget.outerStride();
    const float* dt_direct = dtarget_.data() + i * d;
    for (int c = 0; c < d; ++c) dt[c] += dt_direct[c];
    for (uint32_t k = offsets_[i]; k < offsets_[i + 1]; ++k) {
      const float* dx = dx_.data() + static_cast<Eigen::Index>(k) * 2 * d;
      const float* h = h_.data() + static_cast<Eigen::Index>(k) * d;
      float* dh = dh_.data() + static_cast<Eigen::Index>(k) * d;
      for (int c = 0; c < d; ++c) {
        dh[c] += dx[c] + dx[d + c] * t[c];
        dt[c] += dx[d + c] * h[c];
      }
    }
  }
}

void DinAttention::AddHistoryGradients(const FieldBatch& history, int first,
                                       RowMatrix* grads) const {
  const int d = dim_;
  assert(static_cast<Eigen::Index>(history.rows.size()) == dh_.rows());
  assert(first >= 0 && first + d <= grads->cols());
  for (size_t k = 0; k < history.rows.size(); ++k) {
    float* dst = grads->data() + history.rows[k] * grads->cols() + first;
    const float* src = dh_.data() + static_cast<Eigen::Index>(k) * d;
    for (int c = 0; c < d; ++c) dst[c] += src[c];
  }
}

}  // namespace tessera::models::layers
