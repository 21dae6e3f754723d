// Factories of the built-in CTR models, one per file (lr_model.cc,
// fm_model.cc, deepfm_model.cc). NewModel (model.h) dispatches to them on
// ModelConfig::type; call NewModel unless you mean one model. Each returns
// InvalidArgument, naming the offending key, for a bad config or schema.
//
//   lr      logit = bias + sum_f w_f + numeric . numeric_w
//   fm      lr + 0.5 * sum_d ((sum_f v_f,d)^2 - sum_f v_f,d^2)
//   deepfm  fm + MLP(concat_f v_f) (Guo et al. 2017)
//   din     lr + MLP(concat_f v_f), an attended sequence's v_f pooled by
//           DIN's activation unit against its target (Zhou et al. 2018)
//   bst     lr + MLP(concat_f v_f), an attended sequence's v_f the output of
//           Transformer encoder layers over the history and the target
//           (Chen et al. 2019)
// where f runs over every schema field (categorical: its key's row; sequence:
// the mean of its keys' rows; numeric: x times a per-field dense vector; see
// layers/field_embedding.h) and v_f is zero for a missing field.
#ifndef TESSERA_MODELS_CTR_MODELS_H_
#define TESSERA_MODELS_CTR_MODELS_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "models/model.h"
#include "models/schema.h"

namespace tessera::models {

// Limits NewModel enforces (a typo in a config must not allocate gigabytes).
inline constexpr uint32_t kMaxEmbeddingDim = 1024;
inline constexpr uint32_t kMaxHiddenWidth = 1 << 16;

StatusOr<std::unique_ptr<Model>> NewLrModel(const ModelConfig& config, const Schema& schema);
StatusOr<std::unique_ptr<Model>> NewFmModel(const ModelConfig& config, const Schema& schema);
StatusOr<std::unique_ptr<Model>> NewDeepFmModel(const ModelConfig& config, const Schema& schema);
StatusOr<std::unique_ptr<Model>> NewDinModel(const ModelConfig& config, const Schema& schema);
StatusOr<std::unique_ptr<Model>> NewBstModel(const ModelConfig& config, const Schema& schema);

// InvalidArgument unless 1 <= config.embedding_dim <= kMaxEmbeddingDim.
Status CheckEmbeddingDim(const ModelConfig& config);
// InvalidArgument, naming `key` and the index, unless every width is in
// [1, kMaxHiddenWidth].
Status CheckHiddenWidths(const std::string& key, const std::vector<uint32_t>& widths);

}  // namespace tessera::models

#endif  // TESSERA_MODELS_CTR_MODELS_H_
