// What din and bst share: every field's vector as in deepfm (FieldEmbedding),
// except that each attended sequence field's vector is pooled by the model
// against its target field (ResolveAttentionPairs); then
//   logit = bias + sum of the fields' linear terms (0 for attended fields)
//           [+ FM interaction of the field vectors, with model.fm]
//           + MLP(concatenated field vectors, F * k wide).
// Sparse rows: 1 + k floats. Dense blocks: "bias", "numeric.w", "numeric.v"
// (as in deepfm), the pooling layers' blocks (AppendPoolingBlocks), then
// "mlp.<l>.weight" / ".bias".
//
// A subclass supplies the pooling: forward into the attended slots of the
// MLP input, backward from those slots (adding the target fields' gradients
// to theirs), the history rows' gradients, and the attention weights that
// explanations show.
//
// Thread-compatible.
#ifndef TESSERA_MODELS_SEQUENCE_MODEL_H_
#define TESSERA_MODELS_SEQUENCE_MODEL_H_

#include <span>
#include <string>
#include <vector>

#include "models/attention_pairs.h"
#include "models/layers/dense_layout.h"
#include "models/layers/field_embedding.h"
#include "models/layers/fm_interaction.h"
#include "models/layers/mlp.h"
#include "models/logit_model.h"

namespace tessera::models {

class SequenceModel : public LogitModel {
 public:
  uint32_t row_dim() const override { return fields_.row_dim(); }

  float TrainStep(Batch* batch, std::span<const std::span<const float>> dense,
                  std::span<const std::span<float>> dense_grads,
                  std::span<float> predictions) override;

  // Returns OK with no explanations for an empty batch.
  Status Explain(const Batch& batch, std::span<const std::span<const float>> dense,
                 std::vector<Explanation>* out) override;

 protected:
  // Call Init from the subclass constructor, after the subclass can append
  // its pooling blocks.
  SequenceModel(std::string name, layers::FieldEmbedding fields, std::vector<ResolvedPair> pairs,
                const ModelConfig& config);
  void Init();

  // The subclass's pooling, pair by pair (pairs()[u] is unit u).
  // Appends the dense blocks of unit u; called once by Init.
  virtual void AppendPoolingBlocks(int unit, std::vector<DenseBlock>* blocks) = 0;
  // Writes unit u's pooled vectors into `pooled` (batch x k) given its
  // target vectors; `training` is true inside TrainStep.
  virtual void PoolForward(int unit, const Batch& batch, const FieldBatch& history,
                           const Eigen::Ref<const RowMatrix>& target,
                           std::span<const std::span<const float>> blocks, bool training,
                           Eigen::Ref<RowMatrix> pooled) = 0;
  // Backward of the last PoolForward of unit u: overwrites `grads` (its
  // blocks) and adds d(loss)/d(target) into dtarget.
  virtual void PoolBackward(int unit, const Eigen::Ref<const RowMatrix>& dpooled,
                            std::span<const std::span<const float>> blocks,
                            std::span<const std::span<float>> grads,
                            Eigen::Ref<RowMatrix> dtarget) = 0;
  // Adds the history rows' gradients of the last PoolBackward of unit u.
  virtual void AddHistoryGradients(int unit, const FieldBatch& history, RowMatrix* grads) = 0;
  // Example i's attention weights over its history tokens (oldest first)
  // from the last PoolForward of unit u.
  virtual std::vector<float> AttentionWeights(int unit, const FieldBatch& history, int i) = 0;

  const std::vector<ResolvedPair>& pairs() const { return pairs_; }
  int dim() const { return fields_.dim(); }

 private:
  void Forward(const Batch& batch, std::span<const std::span<const float>> dense) override;
  void Forward(const Batch& batch, std::span<const std::span<const float>> dense, bool training);

  template <typename T>
  std::span<const std::span<T>> UnitBlocks(std::span<const std::span<T>> all, int unit) const {
    return all.subspan(unit_first_[unit], unit_size_[unit]);
  }
  template <typename T>
  std::span<const std::span<T>> MlpBlocks(std::span<const std::span<T>> all) const {
    return all.subspan(mlp_first_, mlp_.num_dense_blocks());
  }

  const std::string name_;
  layers::FieldEmbedding fields_;
  const std::vector<ResolvedPair> pairs_;
  const bool fm_enabled_;
  layers::FmInteraction fm_;
  layers::Mlp mlp_;
  int bias_ = layers::DenseLayout::kAbsent;
  int numeric_w_ = layers::DenseLayout::kAbsent;
  int numeric_v_ = layers::DenseLayout::kAbsent;
  std::vector<int> unit_first_, unit_size_;
  int mlp_first_ = 0;
  RowMatrix input_;  // batch x F * k: the MLP's input
  RowMatrix dlogits_;
  RowMatrix dinput_;
};

// The FieldBatch of `field`. REQUIRES: the batch has it (the batch builder
// gives every categorical and sequence field one, empty or not).
const FieldBatch& FindFieldBatch(const Batch& batch, int field);

// The checks and FieldEmbedding din and bst share: embedding dim, hidden
// widths, the attention pairs (attended fields skipped by the embedding).
struct SequenceModelParts {
  layers::FieldEmbedding fields;
  std::vector<ResolvedPair> pairs;
};
StatusOr<SequenceModelParts> MakeSequenceModelParts(const ModelConfig& config,
                                                    const Schema& schema);

}  // namespace tessera::models

#endif  // TESSERA_MODELS_SEQUENCE_MODEL_H_
