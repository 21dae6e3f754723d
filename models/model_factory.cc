// NewModel: dispatch on ModelConfig::type; Model::Explain's default.
#include <memory>
#include <string>

#include "models/ctr_models.h"
#include "models/model.h"

namespace tessera::models {

Status CheckEmbeddingDim(const ModelConfig& config) {
  if (config.embedding_dim == 0 || config.embedding_dim > kMaxEmbeddingDim) {
    return InvalidArgumentError("model.embedding_dim: must be in [1, " +
                                std::to_string(kMaxEmbeddingDim) + "], got " +
                                std::to_string(config.embedding_dim));
  }
  return OkStatus();
}

Status CheckHiddenWidths(const std::string& key, const std::vector<uint32_t>& widths) {
  for (size_t l = 0; l < widths.size(); ++l) {
    if (widths[l] == 0 || widths[l] > kMaxHiddenWidth) {
      return InvalidArgumentError(key + "[" + std::to_string(l) + "]: must be in [1, " +
                                  std::to_string(kMaxHiddenWidth) + "], got " +
                                  std::to_string(widths[l]));
    }
  }
  return OkStatus();
}

Status Model::Explain(const Batch& /*batch*/, std::span<const std::span<const float>> /*dense*/,
                      std::vector<Explanation>* /*out*/) {
  return UnimplementedError("this model cannot explain its predictions");
}

StatusOr<std::unique_ptr<Model>> NewModel(const ModelConfig& config, const Schema& schema) {
  if (config.type == "lr") return NewLrModel(config, schema);
  if (config.type == "fm") return NewFmModel(config, schema);
  if (config.type == "deepfm") return NewDeepFmModel(config, schema);
  if (config.type == "din") return NewDinModel(config, schema);
  if (config.type == "bst") return NewBstModel(config, schema);
  return InvalidArgumentError("model.type: unknown model \"" + config.type +
                              "\" (expected lr, fm, deepfm, din or bst)");
}

}  // namespace tessera::models
