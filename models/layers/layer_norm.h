// Layer normalization over the columns of each row (Ba et al. 2016):
//   y = (x - mean(x)) / sqrt(var(x) + epsilon) * gamma + beta
// with mean and (biased) variance over the row's dim entries. Rows are
// independent, so padding rows of a sequence block never affect valid rows.
//
// Parameters are 2 dense blocks, in order: "<prefix>.gain" (dim) and
// "<prefix>.bias" (dim, beta). gamma = 1 + gain: dense blocks are
// initialized normal(0, stddev) and gamma must start at 1, so the block
// holds the offset from 1 and is initialized to 0 (stddev 0); beta starts
// at 0 too. The optimizer's l2 (if any) thus pulls gamma towards 1.
//
// Thread-compatible: keeps the normalized input and the row scales of the
// last Forward for Backward (scratch buffers, reused across batches).
//
// Example:
//   LayerNorm norm(16);
//   norm.AppendDenseBlocks("ln", &blocks);          // 2 blocks
//   const RowMatrix& y = norm.Forward(x, params);    // x: rows x 16
//   norm.Backward(dy, params, grads, &dx);
#ifndef TESSERA_MODELS_LAYERS_LAYER_NORM_H_
#define TESSERA_MODELS_LAYERS_LAYER_NORM_H_

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include <Eigen/Core>

#include "models/batch.h"
#include "models/model.h"

namespace tessera::models::layers {

class LayerNorm {
 public:
  static constexpr float kDefaultEpsilon = 1e-5f;

  // REQUIRES: dim > 0, epsilon > 0.
  explicit LayerNorm(uint32_t dim, float epsilon = kDefaultEpsilon);

  uint32_t dim() const { return dim_; }
  static constexpr int num_dense_blocks() { return 2; }

  void AppendDenseBlocks(const std::string& prefix, std::vector<DenseBlock>* blocks) const;

  // Returns y (x.rows() x dim), valid until the next Forward.
  // REQUIRES: x.cols() == dim(); params are the 2 blocks above.
  const RowMatrix& Forward(const RowMatrix& x, std::span<const std::span<const float>> params);

  // The last Forward's output.
  const RowMatrix& output() const { return y_; }

  // Backward of the last Forward given dy = d(loss)/dy: overwrites `grads`
  // (same layout as params) and, if dx is not null, sets *dx = d(loss)/dx.
  // Needs no x: the last Forward's normalized rows are kept. dx may alias
  // dy (the same matrix).
  // REQUIRES: dy has the shape of the last Forward's output; same params.
  void Backward(const RowMatrix& dy, std::span<const std::span<const float>> params,
                std::span<const std::span<float>> grads, RowMatrix* dx);

 private:
  const uint32_t dim_;
  const float epsilon_;
  RowMatrix normalized_;       // (x - mean) * inv_std, per row
  Eigen::VectorXf inv_std_;    // 1 / sqrt(var + epsilon), per row
  RowMatrix y_;
  // Backward scratch.
  RowMatrix dnormalized_;      // dy * gamma
  Eigen::VectorXf mean_dn_;    // per row: mean of dnormalized_
  Eigen::VectorXf mean_dn_n_;  // per row: mean of dnormalized_ .* normalized_
};

}  // namespace tessera::models::layers

#endif  // TESSERA_MODELS_LAYERS_LAYER_NORM_H_
