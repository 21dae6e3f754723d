// The part every CTR model here shares: dense blocks from a DenseLayout and
// Predict() = sigmoid of the logits that the model's Forward() computes.
// Thread-compatible, like Model.
#ifndef TESSERA_MODELS_LOGIT_MODEL_H_
#define TESSERA_MODELS_LOGIT_MODEL_H_

#include <span>
#include <vector>

#include <Eigen/Core>

#include "models/layers/dense_layout.h"
#include "models/layers/log_loss.h"
#include "models/model.h"

namespace tessera::models {

class LogitModel : public Model {
 public:
  const std::vector<DenseBlock>& dense_blocks() const override { return layout_.blocks(); }

  void Predict(const Batch& batch, std::span<const std::span<const float>> dense,
               std::span<float> predictions) override {
    Forward(batch, dense);
    layers::Sigmoid({logits_.data(), static_cast<size_t>(batch.size)}, predictions);
  }

 protected:
  // Computes logits_ (batch.size of them) from the batch and dense blocks.
  virtual void Forward(const Batch& batch, std::span<const std::span<const float>> dense) = 0;

  layers::DenseLayout layout_;
  Eigen::VectorXf logits_;
};

}  // namespace tessera::models

#endif  // TESSERA_MODELS_LOGIT_MODEL_H_
