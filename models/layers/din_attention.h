// DIN's local activation unit (Zhou et al. 2018): for each history item h
// of an example and the example's target t (both dim-wide embeddings), an
// MLP over [h, t, h - t, h * t] (4 * dim wide, ReLU hidden layers, one
// output) scores h; the pooled history is sum_h w_h * h, with w the raw
// scores (kRaw, as in the paper, keeping the intensity of interest), their
// sigmoid (kSigmoid: unnormalized too, but in (0, 1), so a higher weight
// always means more attention) or their softmax over the example's history
// (kSoftmax). An empty history pools to zeros.
//
// Tokens are packed in FieldBatch order (token k = the field's k-th
// occurrence, example i owning [offsets[i], offsets[i+1])), so no work is
// spent on padding; the MLP runs as GEMMs over all tokens of the batch, its
// first layer split so the target's part is computed once per example.
//
// Parameters: the MLP's blocks "<prefix>.<l>.weight" / ".bias" (layers/
// mlp.h), in 4 * dim, hidden..., out 1.
//
// Thread-compatible: keeps the last Forward's activations for Backward.
#ifndef TESSERA_MODELS_LAYERS_DIN_ATTENTION_H_
#define TESSERA_MODELS_LAYERS_DIN_ATTENTION_H_

#include <cstdint>
#include <span>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <Eigen/Core>

#include "models/batch.h"
#include "models/layers/mlp.h"
#include "models/model.h"

namespace tessera::models::layers {

class DinAttention {
 public:
  enum class Weights : uint8_t { kRaw, kSigmoid, kSoftmax };
  // "raw" | "sigmoid" | "softmax"; nullopt otherwise.
  static std::optional<Weights> ParseWeights(std::string_view name);

  // REQUIRES: dim > 0, every hidden width > 0.
  DinAttention(uint32_t dim, std::vector<uint32_t> hidden, Weights weights);

  int num_dense_blocks() const { return mlp_.num_dense_blocks(); }
  void AppendDenseBlocks(const std::string& prefix, std::vector<DenseBlock>* blocks) const {
    mlp_.AppendDenseBlocks(prefix, blocks);
  }

  // pooled.row(i) = sum over example i's tokens k of w_k * h_k, where h_k =
  // values.row(history.rows[k]).segment(first, dim) and t_i = target.row(i).
  // REQUIRES: target and pooled are batch x dim (batch =
  // history.offsets.size() - 1); first + dim <= values.cols().
  void Forward(const FieldBatch& history, const RowMatrix& values, int first,
               const Eigen::Ref<const RowMatrix>& target,
               std::span<const std::span<const float>> params, Eigen::Ref<RowMatrix> pooled);

  // The weight of every token of the last Forward, in FieldBatch order.
  std::span<const float> weights() const { return {weights_.data(), weights_.size()}; }

  // Backward of the last Forward (same arguments) given dpooled = d(loss)/
  // d(pooled): overwrites `grads` (the MLP's blocks) and adds d(loss)/
  // d(target) into *dtarget. The history rows' gradients are kept for
  // AddHistoryGradients.
  void Backward(const Eigen::Ref<const RowMatrix>& dpooled,
                std::span<const std::span<const float>> params,
                std::span<const std::span<float>> grads, Eigen::Ref<RowMatrix> dtarget);

  // grads->row(history.rows[k]).segment(first, dim) += d(loss)/d(h_k) of the
  // last Backward. REQUIRES: grads has the shape of the Forward's values.
  void AddHistoryGradients(const FieldBatch& history, int first, RowMatrix* grads) const;

 private:
  void FirstLayerForward(std::span<const float> weight, std::span<const float> bias);

  const int dim_;
  const Weights mode_;
  const int width_;            // of the first layer (1 if it is the score)
  Mlp mlp_;                    // the parameter layout (AppendDenseBlocks)
  std::optional<Mlp> rest_;    // the layers after the first, if any
  std::vector<uint32_t> offsets_;  // copy of the Forward's history offsets
  RowMatrix h_;        // tokens x dim
  RowMatrix t_;        // batch x dim (copy of the target)
  RowMatrix x_;        // tokens x 2 dim: [h, h * t]
  RowMatrix fused_;    // 2 dim x width: [Wa + Wc; Wd]
  RowMatrix target_weight_;  // dim x width: Wb - Wc
  RowMatrix target_term_;    // batch x width: t (Wb - Wc)
  RowMatrix z_;        // tokens x width: the first layer's output
  RowMatrix dz_, dz_sum_, fused_grad_, dtarget_;
  std::vector<float> weights_;  // tokens
  RowMatrix dscores_;  // tokens x 1
  RowMatrix dx_;       // tokens x 2 dim
  RowMatrix dh_;       // tokens x dim
};

}  // namespace tessera::models::layers

#endif  // TESSERA_MODELS_LAYERS_DIN_ATTENTION_H_
