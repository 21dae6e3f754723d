// DeepFM (Guo et al. 2017): an FM and an MLP sharing the field embeddings.
#include <cassert>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "models/ctr_models.h"
#include "models/logit_model.h"
#include "models/layers/dense_layout.h"
#include "models/layers/explain_util.h"
#include "models/layers/field_embedding.h"
#include "models/layers/fm_interaction.h"
#include "models/layers/log_loss.h"
#include "models/layers/mlp.h"

namespace tessera::models {
namespace {

using layers::DenseLayout;
using layers::FieldEmbedding;

// logit = bias + sum of the fields' linear terms + FM interaction +
// MLP(concatenated field vectors, F * k wide; missing fields are zeros).
// Sparse rows: 1 + k floats. Dense blocks: "bias", "numeric.w", "numeric.v"
// (as in fm), then "mlp.<l>.weight" and "mlp.<l>.bias" per layer (see
// layers/mlp.h). Thread-compatible.
class DeepFmModel final : public LogitModel {
 public:
  DeepFmModel(FieldEmbedding fields, const std::vector<uint32_t>& hidden)
      : fields_(std::move(fields)),
        fm_(fields_.num_fields(), fields_.dim()),
        mlp_(static_cast<uint32_t>(fields_.num_fields() * fields_.dim()), hidden, 1) {
    const auto num_numeric = static_cast<uint64_t>(fields_.num_numeric());
    bias_ = layout_.Add({.name = "bias", .size = 1, .init_stddev = 0.0f});
    numeric_w_ = layout_.Add({.name = "numeric.w", .size = num_numeric, .init_stddev = 0.0f});
    numeric_v_ = layout_.Add({.name = "numeric.v",
                              .size = num_numeric * static_cast<uint64_t>(fields_.dim()),
                              .init_stddev = 0.01f});
    std::vector<DenseBlock> mlp_blocks;
    mlp_.AppendDenseBlocks("mlp", &mlp_blocks);
    mlp_first_ = layout_.size();
    for (DenseBlock& block : mlp_blocks) layout_.Add(std::move(block));
  }

  uint32_t row_dim() const override { return fields_.row_dim(); }

  float TrainStep(Batch* batch, std::span<const std::span<const float>> dense,
                  std::span<const std::span<float>> dense_grads,
                  std::span<float> predictions) override {
    assert(layout_.Matches(dense_grads));
    Forward(*batch, dense);
    const auto n = static_cast<size_t>(batch->size);
    dlogits_.resize(batch->size, 1);
    const std::span<float> dlogits(dlogits_.data(), n);
    const float loss =
        layers::SigmoidLogLoss({logits_.data(), n}, batch->labels, predictions, dlogits);
    const RowMatrix& e = fields_.embeddings();
    // d(loss)/d(e): the MLP's input gradient (overwrites), plus the FM's.
    mlp_.Backward(e, dlogits_, MlpBlocks(dense), MlpBlocks(dense_grads), &dembeddings_);
    fm_.Backward(e, dlogits, &dembeddings_);
    fields_.Backward(batch, dlogits, &dembeddings_, DenseLayout::Get(dense_grads, numeric_w_),
                     DenseLayout::Get(dense_grads, numeric_v_));
    dense_grads[bias_][0] = dlogits_.sum();
    return loss;
  }

  // fields[f]: as fm, plus gradient x input of the MLP over f's vector; the
  // MLP's remainder goes to bias.
  Status Explain(const Batch& batch, std::span<const std::span<const float>> dense,
                 std::vector<Explanation>* out) override {
    if (!layout_.Matches(dense)) return InvalidArgumentError("deepfm: dense blocks do not match");
    Forward(batch, dense);
    const int num_fields = fields_.num_fields();
    const RowMatrix& e = fields_.embeddings();
    layers::ResetExplanations(batch.size, num_fields, dense[bias_][0], out);
    layers::AddFieldTerms(fields_.linear(), out);
    layers::AddFmShares(e, num_fields, fields_.dim(), out);
    layers::AddMlpGradientTimesInput(&mlp_, e, MlpBlocks(dense),
                                     layers::ConsecutiveFieldColumns(num_fields, fields_.dim()),
                                     out);
    layers::SetLogits({logits_.data(), static_cast<size_t>(batch.size)}, out);
    return OkStatus();
  }

 private:
  template <typename T>
  std::span<const std::span<T>> MlpBlocks(std::span<const std::span<T>> blocks) const {
    return blocks.subspan(mlp_first_, mlp_.num_dense_blocks());
  }

  void Forward(const Batch& batch, std::span<const std::span<const float>> dense) override {
    assert(layout_.Matches(dense));
    fields_.Forward(batch, DenseLayout::Get(dense, numeric_w_),
                    DenseLayout::Get(dense, numeric_v_));
    const RowMatrix& e = fields_.embeddings();
    logits_.resize(batch.size);
    fm_.Forward(e, {logits_.data(), static_cast<size_t>(batch.size)});
    logits_ += mlp_.Forward(e, MlpBlocks(dense)).col(0);
    logits_ += fields_.linear().rowwise().sum();
    logits_.array() += dense[bias_][0];
  }

  FieldEmbedding fields_;
  layers::FmInteraction fm_;
  layers::Mlp mlp_;
  int bias_ = DenseLayout::kAbsent;
  int numeric_w_ = DenseLayout::kAbsent;
  int numeric_v_ = DenseLayout::kAbsent;
  int mlp_first_ = 0;
  RowMatrix dlogits_;  // batch x 1: the MLP's output gradient
  RowMatrix dembeddings_;
};

}  // namespace

StatusOr<std::unique_ptr<Model>> NewDeepFmModel(const ModelConfig& config,
                                                const Schema& schema) {
  TESSERA_RETURN_IF_ERROR(CheckEmbeddingDim(config));
  TESSERA_RETURN_IF_ERROR(CheckHiddenWidths("model.hidden", config.hidden));
  TESSERA_ASSIGN_OR_RETURN(
      FieldEmbedding fields,
      FieldEmbedding::Create(schema, config.embedding_dim, FieldEmbedding::Sequences::kMeanPool));
  return std::unique_ptr<Model>(std::make_unique<DeepFmModel>(std::move(fields), config.hidden));
}

}  // namespace tessera::models
