// Logistic regression over every field's first-order weight.
#include <cassert>
#include <memory>
#include <utility>
#include <vector>

#include "models/ctr_models.h"
#include "models/logit_model.h"
#include "models/layers/dense_layout.h"
#include "models/layers/explain_util.h"
#include "models/layers/field_embedding.h"
#include "models/layers/log_loss.h"

namespace tessera::models {
namespace {

using layers::DenseLayout;
using layers::FieldEmbedding;

// logit = bias + sum of the fields' linear terms. Sparse rows: 1 float (w).
// Dense blocks: "bias" (1), "numeric.w" (num_numeric, if any). Thread-compatible.
class LrModel final : public LogitModel {
 public:
  explicit LrModel(FieldEmbedding fields) : fields_(std::move(fields)) {
    bias_ = layout_.Add({.name = "bias", .size = 1, .init_stddev = 0.0f});
    numeric_w_ = layout_.Add({.name = "numeric.w",
                              .size = static_cast<uint64_t>(fields_.num_numeric()),
                              .init_stddev = 0.0f});
  }

  uint32_t row_dim() const override { return 1; }

  float TrainStep(Batch* batch, std::span<const std::span<const float>> dense,
                  std::span<const std::span<float>> dense_grads,
                  std::span<float> predictions) override {
    assert(layout_.Matches(dense_grads));
    Forward(*batch, dense);
    const int n = batch->size;
    dlogits_.resize(n);
    const float loss =
        layers::SigmoidLogLoss({logits_.data(), static_cast<size_t>(n)}, batch->labels,
                               predictions, {dlogits_.data(), static_cast<size_t>(n)});
    fields_.Backward(batch, {dlogits_.data(), static_cast<size_t>(n)}, nullptr,
                     DenseLayout::Get(dense_grads, numeric_w_), {});
    dense_grads[bias_][0] = dlogits_.sum();
    return loss;
  }

  // fields[f]: the field's linear term (exact); bias: the global bias.
  Status Explain(const Batch& batch, std::span<const std::span<const float>> dense,
                 std::vector<Explanation>* out) override {
    if (!layout_.Matches(dense)) return InvalidArgumentError("lr: dense blocks do not match");
    Forward(batch, dense);
    layers::ResetExplanations(batch.size, fields_.num_fields(), dense[bias_][0], out);
    layers::AddFieldTerms(fields_.linear(), out);
    layers::SetLogits({logits_.data(), static_cast<size_t>(batch.size)}, out);
    return OkStatus();
  }

 private:
  void Forward(const Batch& batch, std::span<const std::span<const float>> dense) override {
    assert(layout_.Matches(dense));
    fields_.Forward(batch, DenseLayout::Get(dense, numeric_w_), {});
    logits_ = fields_.linear().rowwise().sum();
    logits_.array() += dense[bias_][0];
  }

  FieldEmbedding fields_;
  int bias_ = DenseLayout::kAbsent;
  int numeric_w_ = DenseLayout::kAbsent;
  Eigen::VectorXf dlogits_;
};

}  // namespace

StatusOr<std::unique_ptr<Model>> NewLrModel(const ModelConfig& /*config*/,
                                            const Schema& schema) {
  TESSERA_ASSIGN_OR_RETURN(
      FieldEmbedding fields,
      FieldEmbedding::Create(schema, /*dim=*/0, FieldEmbedding::Sequences::kMeanPool));
  return std::unique_ptr<Model>(std::make_unique<LrModel>(std::move(fields)));
}

}  // namespace tessera::models
