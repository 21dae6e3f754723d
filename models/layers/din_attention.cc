#include "models/layers/din_attention.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <utility>

namespace tessera::models::layers {

std::optional<DinAttention::Weights> DinAttention::ParseWeights(std::string_view name) {
  if (name == "raw") return Weights::kRaw;
  if (name == "sigmoid") return Weights::kSigmoid;
  if (name == "softmax") return Weights::kSoftmax;
  return std::nullopt;
}

DinAttention::DinAttention(uint32_t dim, std::vector<uint32_t> hidden, Weights weights)
    : dim_(static_cast<int>(dim)), mode_(weights), mlp_(4 * dim, std::move(hidden), 1) {}

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
  x_.resize(tokens, 4 * d);
  for (Eigen::Index i = 0; i < batch; ++i) {
    const float* t = t_.data() + i * d;
    for (uint32_t k = history.offsets[i]; k < history.offsets[i + 1]; ++k) {
      assert(history.rows[k] < values.rows());
      const float* h = values.data() + history.rows[k] * values.cols() + first;
      float* x = x_.data() + static_cast<Eigen::Index>(k) * 4 * d;
      std::copy_n(h, d, h_.data() + static_cast<Eigen::Index>(k) * d);
      for (int c = 0; c < d; ++c) {
        x[c] = h[c];
        x[d + c] = t[c];
        x[2 * d + c] = h[c] - t[c];
        x[3 * d + c] = h[c] * t[c];
      }
    }
  }
  weights_.resize(tokens);
  if (tokens > 0) {
    const RowMatrix& scores = mlp_.Forward(x_, params);
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
  mlp_.Backward(x_, dscores_, params, grads, &dx_);
  // x = [h, t, h - t, h * t].
  for (Eigen::Index i = 0; i < batch; ++i) {
    const float* t = t_.data() + i * d;
    float* dt = dtarget.data() + i * dtarget.outerStride();
    for (uint32_t k = offsets_[i]; k < offsets_[i + 1]; ++k) {
      const float* dx = dx_.data() + static_cast<Eigen::Index>(k) * 4 * d;
      const float* h = h_.data() + static_cast<Eigen::Index>(k) * d;
      float* dh = dh_.data() + static_cast<Eigen::Index>(k) * d;
      for (int c = 0; c < d; ++c) {
        dh[c] += dx[c] + dx[2 * d + c] + dx[3 * d + c] * t[c];
        dt[c] += dx[d + c] - dx[2 * d + c] + dx[3 * d + c] * h[c];
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
