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
#include "models/explanation.h"
#include "models/schema.h"

namespace tessera::models {

// A sequence field and the target field it attends with (din, bst).
struct AttentionPair {
  std::string sequence;  // a sequence field
  std::string target;    // a categorical field of the same table

  friend bool operator==(const AttentionPair&, const AttentionPair&) = default;
};

struct ModelConfig {
  std::string type = "deepfm";    // lr | fm | deepfm | din | bst
  uint32_t embedding_dim = 16;
  std::vector<uint32_t> hidden = {256, 128};
  uint64_t seed = 1;              // initial dense values
  // din, bst: the pairs that attend. Empty: every sequence field pairs with
  // the first categorical field of its table; a sequence field without a
  // pair is mean-pooled as in deepfm.
  std::vector<AttentionPair> attention = {};
  // din, bst: add deepfm's FM interaction over the field vectors (the
  // attention-pooled histories included) to the MLP.
  bool fm = false;
  // din: hidden widths of the attention unit (an MLP over [h, t, h-t, h*t]
  // giving one score per history item).
  std::vector<uint32_t> attention_hidden = {64, 16};
  // din: how a history item's score becomes its weight: "raw" (the score,
  // as in the DIN paper), "sigmoid" (in (0, 1), unnormalized: keeps the
  // intensity of interest, and higher means more attention) or "softmax"
  // (over the example's history).
  std::string attention_weights = "sigmoid";
  // bst: Transformer encoder layers, heads per layer (must divide
  // embedding_dim), the position-wise feed-forward width (0: 4 x
  // embedding_dim), dropout rate during training (never at prediction) and
  // what feeds the MLP: the target position's output ("target") or the mean
  // over every position ("mean").
  uint32_t layers = 1;
  uint32_t heads = 2;
  uint32_t ffn_dim = 0;
  float dropout = 0.0f;
  std::string bst_output = "target";
  // bst: "pre" (LayerNorm on each sublayer's input: the output keeps the
  // embeddings' scale) or "post" (after each residual sum, as in the BST
  // paper). See layers/transformer_encoder.h.
  std::string bst_norm = "pre";
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

  // Why each example scored what it did (models/explanation.h): resizes
  // *out to batch.size explanations. Unimplemented for a model that cannot
  // explain itself.
  virtual Status Explain(const Batch& batch, std::span<const std::span<const float>> dense,
                         std::vector<Explanation>* out);
};

// InvalidArgument for an unknown type or bad sizes (naming the key).
StatusOr<std::unique_ptr<Model>> NewModel(const ModelConfig& config, const Schema& schema);

}  // namespace tessera::models

#endif  // TESSERA_MODELS_MODEL_H_
