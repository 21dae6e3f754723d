#include "models/sequence_model.h"

#include <cassert>
#include <cstdlib>
#include <utility>

#include "models/ctr_models.h"
#include "models/layers/explain_util.h"
#include "models/layers/log_loss.h"

namespace tessera::models {

using layers::DenseLayout;

const FieldBatch& FindFieldBatch(const Batch& batch, int field) {
  for (const FieldBatch& fb : batch.fields) {
    if (fb.field == field) return fb;
  }
  assert(false && "an attended field is missing from the batch");
  std::abort();
}

StatusOr<SequenceModelParts> MakeSequenceModelParts(const ModelConfig& config,
                                                    const Schema& schema) {
  TESSERA_RETURN_IF_ERROR(CheckEmbeddingDim(config));
  TESSERA_RETURN_IF_ERROR(CheckHiddenWidths("model.hidden", config.hidden));
  TESSERA_ASSIGN_OR_RETURN(std::vector<ResolvedPair> pairs, ResolveAttentionPairs(config, schema));
  std::vector<int> attended;
  for (const ResolvedPair& pair : pairs) attended.push_back(pair.sequence);
  TESSERA_ASSIGN_OR_RETURN(layers::FieldEmbedding fields,
                           layers::FieldEmbedding::Create(schema, config.embedding_dim, attended));
  return SequenceModelParts{.fields = std::move(fields), .pairs = std::move(pairs)};
}

SequenceModel::SequenceModel(std::string name, layers::FieldEmbedding fields,
                             std::vector<ResolvedPair> pairs, const ModelConfig& config)
    : name_(std::move(name)),
      fields_(std::move(fields)),
      pairs_(std::move(pairs)),
      fm_enabled_(config.fm),
      fm_(fields_.num_fields(), fields_.dim()),
      mlp_(static_cast<uint32_t>(fields_.num_fields() * fields_.dim()), config.hidden, 1) {}

void SequenceModel::Init() {
  const auto num_numeric = static_cast<uint64_t>(fields_.num_numeric());
  bias_ = layout_.Add({.name = "bias", .size = 1, .init_stddev = 0.0f});
  numeric_w_ = layout_.Add({.name = "numeric.w", .size = num_numeric, .init_stddev = 0.0f});
  numeric_v_ = layout_.Add({.name = "numeric.v",
                            .size = num_numeric * static_cast<uint64_t>(fields_.dim()),
                            .init_stddev = 0.01f});
  for (int u = 0; u < static_cast<int>(pairs_.size()); ++u) {
    std::vector<DenseBlock> blocks;
    AppendPoolingBlocks(u, &blocks);
    unit_first_.push_back(layout_.size());
    unit_size_.push_back(static_cast<int>(blocks.size()));
    for (DenseBlock& block : blocks) {
      assert(block.size > 0);  // a kAbsent block would shift the unit's span
      layout_.Add(std::move(block));
    }
  }
  std::vector<DenseBlock> mlp_blocks;
  mlp_.AppendDenseBlocks("mlp", &mlp_blocks);
  mlp_first_ = layout_.size();
  for (DenseBlock& block : mlp_blocks) layout_.Add(std::move(block));
}

void SequenceModel::Forward(const Batch& batch, std::span<const std::span<const float>> dense) {
  Forward(batch, dense, /*training=*/false);
}

void SequenceModel::Forward(const Batch& batch, std::span<const std::span<const float>> dense,
                            bool training) {
  assert(layout_.Matches(dense));
  fields_.Forward(batch, DenseLayout::Get(dense, numeric_w_), DenseLayout::Get(dense, numeric_v_));
  input_ = fields_.embeddings();
  const int k = fields_.dim();
  for (int u = 0; u < static_cast<int>(pairs_.size()); ++u) {
    const FieldBatch& history = FindFieldBatch(batch, pairs_[u].sequence);
    PoolForward(u, batch, history, input_.middleCols(pairs_[u].target * k, k),
                UnitBlocks(dense, u), training, input_.middleCols(pairs_[u].sequence * k, k));
  }
  logits_.resize(batch.size);
  if (fm_enabled_) {
    fm_.Forward(input_, {logits_.data(), static_cast<size_t>(batch.size)});
  } else {
    logits_.setZero();
  }
  logits_ += mlp_.Forward(input_, MlpBlocks(dense)).col(0);
  logits_ += fields_.linear().rowwise().sum();
  logits_.array() += dense[bias_][0];
}

float SequenceModel::TrainStep(Batch* batch, std::span<const std::span<const float>> dense,
                               std::span<const std::span<float>> dense_grads,
                               std::span<float> predictions) {
  assert(layout_.Matches(dense_grads));
  Forward(*batch, dense, /*training=*/true);
  const auto n = static_cast<size_t>(batch->size);
  dlogits_.resize(batch->size, 1);
  const std::span<float> dlogits(dlogits_.data(), n);
  const float loss =
      layers::SigmoidLogLoss({logits_.data(), n}, batch->labels, predictions, dlogits);
  mlp_.Backward(input_, dlogits_, MlpBlocks(dense), MlpBlocks(dense_grads), &dinput_);
  if (fm_enabled_) fm_.Backward(input_, dlogits, &dinput_);
  const int k = fields_.dim();
  for (int u = 0; u < static_cast<int>(pairs_.size()); ++u) {
    PoolBackward(u, dinput_.middleCols(pairs_[u].sequence * k, k), UnitBlocks(dense, u),
                 UnitBlocks(dense_grads, u), dinput_.middleCols(pairs_[u].target * k, k));
  }
  // Overwrites every table's grads; then the attended histories add theirs.
  fields_.Backward(batch, dlogits, &dinput_, DenseLayout::Get(dense_grads, numeric_w_),
                   DenseLayout::Get(dense_grads, numeric_v_));
  for (int u = 0; u < static_cast<int>(pairs_.size()); ++u) {
    const FieldBatch& history = FindFieldBatch(*batch, pairs_[u].sequence);
    AddHistoryGradients(u, history, &batch->tables[history.table_batch].grads);
  }
  dense_grads[bias_][0] = dlogits_.sum();
  return loss;
}

Status SequenceModel::Explain(const Batch& batch, std::span<const std::span<const float>> dense,
                              std::vector<Explanation>* out) {
  if (!layout_.Matches(dense)) {
    return InvalidArgumentError(name_ + ": dense blocks do not match the model");
  }
  if (batch.size == 0) {
    out->clear();
    return OkStatus();
  }
  Forward(batch, dense, /*training=*/false);
  const int num_fields = fields_.num_fields();
  layers::ResetExplanations(batch.size, num_fields, dense[bias_][0], out);
  layers::AddFieldTerms(fields_.linear(), out);
  if (fm_enabled_) layers::AddFmShares(input_, num_fields, fields_.dim(), out);
  // Gradient x input over the MLP's input: an attended field's share is that
  // of its pooled vector.
  layers::AddMlpGradientTimesInput(&mlp_, input_, MlpBlocks(dense),
                                   layers::ConsecutiveFieldColumns(num_fields, fields_.dim()),
                                   out);
  layers::SetLogits({logits_.data(), static_cast<size_t>(batch.size)}, out);
  for (int u = 0; u < static_cast<int>(pairs_.size()); ++u) {
    const FieldBatch& history = FindFieldBatch(batch, pairs_[u].sequence);
    for (int i = 0; i < batch.size; ++i) {
      (*out)[i].attention.push_back(
          {.field = pairs_[u].sequence, .weights = AttentionWeights(u, history, i)});
    }
  }
  return OkStatus();
}

}  // namespace tessera::models
