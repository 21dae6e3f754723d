// Multi-layer perceptron: Linear layers with ReLU after every hidden layer
// and none after the last (whose outputs are logits or scores).
//   x (batch x in) -> hidden[0] -> ... -> hidden[n-1] -> out
//
// Parameters are 2 dense blocks per layer, in order: "<prefix>.<l>.weight"
// (in_l x out_l, row-major, see linear.h) and "<prefix>.<l>.bias" (out_l).
// Initialization: He normal stddev sqrt(2 / in_l) for layers followed by a
// ReLU; sqrt(1 / in_l) for the last layer, which is not (so the initial
// logits have about the variance of one unit); biases 0.
//
// Thread-compatible: keeps the activations of the last Forward for Backward
// (scratch buffers, reused across batches of the same size).
//
// Example:
//   Mlp mlp(416, {256, 128}, 1);
//   mlp.AppendDenseBlocks("mlp", &blocks);       // 6 blocks
//   const RowMatrix& y = mlp.Forward(x, params);  // params: those 6 spans
//   mlp.Backward(x, dy, params, grads, &dx);
#ifndef TESSERA_MODELS_LAYERS_MLP_H_
#define TESSERA_MODELS_LAYERS_MLP_H_

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "models/batch.h"
#include "models/model.h"

namespace tessera::models::layers {

class Mlp {
 public:
  // REQUIRES: in, out and every hidden width > 0.
  Mlp(uint32_t in, std::vector<uint32_t> hidden, uint32_t out);

  uint32_t in() const { return dims_.front(); }
  uint32_t out() const { return dims_.back(); }
  int num_layers() const { return static_cast<int>(dims_.size()) - 1; }
  int num_dense_blocks() const { return 2 * num_layers(); }

  void AppendDenseBlocks(const std::string& prefix, std::vector<DenseBlock>* blocks) const;

  // Returns the output (batch x out), valid until the next Forward.
  // `params` holds the num_dense_blocks() spans of this MLP's blocks.
  // REQUIRES: x.cols() == in(); block sizes as in AppendDenseBlocks.
  const RowMatrix& Forward(const RowMatrix& x, std::span<const std::span<const float>> params);

  // Backward of the last Forward (same x and params) given dy = d(loss)/d
  // (output): overwrites `grads` (same layout as params) and, if dx is not
  // null, sets *dx = d(loss)/dx.
  void Backward(const RowMatrix& x, const RowMatrix& dy,
                std::span<const std::span<const float>> params,
                std::span<const std::span<float>> grads, RowMatrix* dx);

 private:
  const std::vector<uint32_t> dims_;  // in, hidden..., out
  std::vector<RowMatrix> outputs_;       // per layer, after its activation
  std::vector<RowMatrix> output_grads_;  // d(loss)/d(outputs_[l]), by Backward
};

}  // namespace tessera::models::layers

#endif  // TESSERA_MODELS_LAYERS_MLP_H_
