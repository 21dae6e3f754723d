// DIN (Zhou et al. 2018): each attended history is pooled by DIN's
// activation unit (layers/din_attention.h) against its target field's
// vector; the rest is SequenceModel's (models/sequence_model.h).
// Dense blocks of unit u: "attention.<sequence field>.<l>.weight" / ".bias".
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "models/ctr_models.h"
#include "models/layers/din_attention.h"
#include "models/sequence_model.h"

namespace tessera::models {
namespace {

using layers::DinAttention;

class DinModel final : public SequenceModel {
 public:
  DinModel(SequenceModelParts parts, const Schema& schema, const ModelConfig& config)
      : SequenceModel("din", std::move(parts.fields), parts.pairs, config) {
    for (const ResolvedPair& pair : parts.pairs) {
      units_.emplace_back(config.embedding_dim, config.attention_hidden,
                          *DinAttention::ParseWeights(config.attention_weights));
      prefixes_.push_back("attention." + schema.fields()[pair.sequence].name);
    }
    Init();
  }

 private:
  void AppendPoolingBlocks(int unit, std::vector<DenseBlock>* blocks) override {
    units_[unit].AppendDenseBlocks(prefixes_[unit], blocks);
  }

  void PoolForward(int unit, const Batch& batch, const FieldBatch& history,
                   const Eigen::Ref<const RowMatrix>& target,
                   std::span<const std::span<const float>> blocks, bool /*training*/,
                   Eigen::Ref<RowMatrix> pooled) override {
    units_[unit].Forward(history, batch.tables[history.table_batch].values, 1, target, blocks,
                         pooled);
  }

  void PoolBackward(int unit, const Eigen::Ref<const RowMatrix>& dpooled,
                    std::span<const std::span<const float>> blocks,
                    std::span<const std::span<float>> grads,
                    Eigen::Ref<RowMatrix> dtarget) override {
    units_[unit].Backward(dpooled, blocks, grads, dtarget);
  }

  void AddHistoryGradients(int unit, const FieldBatch& history, RowMatrix* grads) override {
    units_[unit].AddHistoryGradients(history, 1, grads);
  }

  std::vector<float> AttentionWeights(int unit, const FieldBatch& history, int i) override {
    const std::span<const float> weights = units_[unit].weights();
    return {weights.begin() + history.offsets[i], weights.begin() + history.offsets[i + 1]};
  }

  std::vector<DinAttention> units_;
  std::vector<std::string> prefixes_;
};

}  // namespace

StatusOr<std::unique_ptr<Model>> NewDinModel(const ModelConfig& config, const Schema& schema) {
  TESSERA_RETURN_IF_ERROR(CheckHiddenWidths("model.attention_hidden", config.attention_hidden));
  if (!DinAttention::ParseWeights(config.attention_weights)) {
    return InvalidArgumentError("model.attention_weights: must be raw, sigmoid or softmax, got \"" +
                                config.attention_weights + "\"");
  }
  TESSERA_ASSIGN_OR_RETURN(SequenceModelParts parts, MakeSequenceModelParts(config, schema));
  return std::unique_ptr<Model>(std::make_unique<DinModel>(std::move(parts), schema, config));
}

}  // namespace tessera::models
