// A CTR model: forward and backward written by hand over a Batch. Sparse
// parameters (one row of row_dim() floats per key, in each table) and dense
// parameters (blocks of floats: weights and biases of layers) live on the
// parameter servers; the worker pulls them into the Batch / dense spans,
// the model computes, and the worker pushes the gradients.
//
// Loss: mean binary log loss over the batch; gradients are of that mean.
// Regularization is applied server-side (optimizer l2).
//
// Thread-compatible: one Model object per worker thread (it keeps scratch
// buffers); the parameters are passed in, so models hold no weights.
#ifndef TESSERA_MODELS_MODEL_H_
#define TESSERA_MODELS_MODEL_H_

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "common/status.h"
#include "models/batch.h"
#include "models/schema.h"

namespace tessera::models {

struct ModelConfig {
  std::string type = "deepfm";    // lr | fm | deepfm (din, bst: sequence-model issue)
  uint32_t embedding_dim = 16;
  std::vector<uint32_t> hidden = {256, 128};
  uint64_t seed = 1;              // initial dense values
};

// A dense parameter block: one dense table on the servers.
struct DenseBlock {
  std::string name;     // e.g. "mlp.0.weight"
  uint64_t size = 0;    // floats
  float init_stddev = 0;  // normal(0, stddev) initial values; 0 = zeros
};

class Model {
 public:
  virtual ~Model() = default;

  // Floats per sparse row in every table (lr: 1, the weight; fm/deepfm:
  // 1 + embedding_dim, the weight then the factor vector).
  virtual uint32_t row_dim() const = 0;
  virtual const std::vector<DenseBlock>& dense_blocks() const = 0;

  // Forward + backward. `dense` holds one span per dense block (values);
  // `dense_grads` the same layout, overwritten with the gradients. Writes
  // batch->tables[*].grads (resized and overwritten), `predictions`
  // (probabilities before the update, batch->size of them) and returns the
  // mean log loss.
  // REQUIRES: every table's values are keys.size() x row_dim().
  virtual float TrainStep(Batch* batch, std::span<const std::span<const float>> dense,
                          std::span<const std::span<float>> dense_grads,
                          std::span<float> predictions) = 0;

  // Forward only: click probabilities.
  virtual void Predict(const Batch& batch, std::span<const std::span<const float>> dense,
                       std::span<float> predictions) = 0;
};

// InvalidArgument for an unknown type or bad sizes (naming the key).
StatusOr<std::unique_ptr<Model>> NewModel(const ModelConfig& config, const Schema& schema);

}  // namespace tessera::models

#endif  // TESSERA_MODELS_MODEL_H_
