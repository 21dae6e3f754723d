// Factorization machine (Rendle 2010) over every field's factor vector.
#include <cassert>
#include <memory>
#include <utility>
#include <vector>

#include "models/ctr_models.h"
#include "models/logit_model.h"
#include "models/layers/dense_layout.h"
#include "models/layers/explain_util.h"
#include "models/layers/field_embedding.h"
#include "models/layers/fm_interaction.h"
#include "models/layers/log_loss.h"

namespace tessera::models {
namespace {

using layers::DenseLayout;
using layers::FieldEmbedding;

// logit = bias + sum of the fields' linear terms + FM interaction of their
// factor vectors. Sparse rows: 1 + k floats (w, v). Dense blocks: "bias" (1),
// "numeric.w" (num_numeric), "numeric.v" (num_numeric x k) (the numeric
// blocks only if the schema has numeric fields). Thread-compatible.
class FmModel final : public LogitModel {
 public:
  explicit FmModel(FieldEmbedding fields)
      : fields_(std::move(fields)), fm_(fields_.num_fields(), fields_.dim()) {
    const auto num_numeric = static_cast<uint64_t>(fields_.num_numeric());
    bias_ = layout_.Add({.name = "bias", .size = 1, .init_stddev = 0.0f});
    numeric_w_ = layout_.Add({.name = "numeric.w", .size = num_numeric, .init_stddev = 0.0f});
    numeric_v_ = layout_.Add({.name = "numeric.v",
                              .size = num_numeric * static_cast<uint64_t>(fields_.dim()),
                              .init_stddev = 0.01f});
  }

  uint32_t row_dim() const override { return fields_.row_dim(); }

  float TrainStep(Batch* batch, std::span<const std::span<const float>> dense,
                  std::span<const std::span<float>> dense_grads,
                  std::span<float> predictions) override {
    assert(layout_.Matches(dense_grads));
    Forward(*batch, dense);
    const auto n = static_cast<size_t>(batch->size);
    dlogits_.resize(batch->size);
    const float loss = layers::SigmoidLogLoss({logits_.data(), n}, batch->labels, predictions,
                                              {dlogits_.data(), n});
    const RowMatrix& e = fields_.embeddings();
    dembeddings_.resize(e.rows(), e.cols());
    dembeddings_.setZero();
    fm_.Backward(e, {dlogits_.data(), n}, &dembeddings_);
    fields_.Backward(batch, {dlogits_.data(), n}, &dembeddings_,
                     DenseLayout::Get(dense_grads, numeric_w_),
                     DenseLayout::Get(dense_grads, numeric_v_));
    dense_grads[bias_][0] = dlogits_.sum();
    return loss;
  }

  // fields[f]: the linear term plus half of each interaction of f (exact).
  Status Explain(const Batch& batch, std::span<const std::span<const float>> dense,
                 std::vector<Explanation>* out) override {
    if (!layout_.Matches(dense)) return InvalidArgumentError("fm: dense blocks do not match");
    Forward(batch, dense);
    layers::ResetExplanations(batch.size, fields_.num_fields(), dense[bias_][0], out);
    layers::AddFieldTerms(fields_.linear(), out);
    layers::AddFmShares(fields_.embeddings(), fields_.num_fields(), fields_.dim(), out);
    layers::SetLogits({logits_.data(), static_cast<size_t>(batch.size)}, out);
    return OkStatus();
  }

 private:
  void Forward(const Batch& batch, std::span<const std::span<const float>> dense) override {
    assert(layout_.Matches(dense));
    fields_.Forward(batch, DenseLayout::Get(dense, numeric_w_),
                    DenseLayout::Get(dense, numeric_v_));
    logits_.resize(batch.size);
    fm_.Forward(fields_.embeddings(), {logits_.data(), static_cast<size_t>(batch.size)});
    logits_ += fields_.linear().rowwise().sum();
    logits_.array() += dense[bias_][0];
  }

  FieldEmbedding fields_;
  layers::FmInteraction fm_;
  int bias_ = DenseLayout::kAbsent;
  int numeric_w_ = DenseLayout::kAbsent;
  int numeric_v_ = DenseLayout::kAbsent;
  Eigen::VectorXf dlogits_;
  RowMatrix dembeddings_;
};

}  // namespace

StatusOr<std::unique_ptr<Model>> NewFmModel(const ModelConfig& config, const Schema& schema) {
  TESSERA_RETURN_IF_ERROR(CheckEmbeddingDim(config));
  TESSERA_ASSIGN_OR_RETURN(
      FieldEmbedding fields,
      FieldEmbedding::Create(schema, config.embedding_dim, FieldEmbedding::Sequences::kMeanPool));
  return std::unique_ptr<Model>(std::make_unique<FmModel>(std::move(fields)));
}

}  // namespace tessera::models
