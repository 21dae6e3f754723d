// Multi-head self-attention over variable-length sequences (Vaswani et al.
// 2017), forward and backward by hand.
//
// Input x is (B * L) x dim: example i's sequence fills the block of rows
// [i * L, (i + 1) * L), position p at row i * L + p, its valid positions
// [0, lengths[i]) left-aligned (B = lengths.size(), L = x.rows() / B). With
// heads h and head_dim = dim / h, for each example and head:
//   Q = x Wq + bq, K = x Wk + bk, V = x Wv + bv        (GEMMs over all rows)
//   P = masked_softmax(Q_h K_h^T / sqrt(head_dim))      (keys >= length masked)
//   context_h = P V_h;   y = context Wo + bo
// Only valid rows take part: a padding row (p >= lengths[i]) is neither a
// key nor a value, and as a query it attends to nothing (its P row is zero),
// so its context is 0 and its output is bo. Padding rows therefore never
// change valid rows; callers ignore the padding rows' output. A
// length of 0 gives P == 0 and y == bo for the whole block, never NaN.
//
// Parameters are 8 dense blocks, in order (W row-major dim x dim as in
// linear.h, so the head h columns are [h * head_dim, (h + 1) * head_dim)):
//   "<prefix>.query.weight", "<prefix>.query.bias",
//   "<prefix>.key.weight",   "<prefix>.key.bias",
//   "<prefix>.value.weight", "<prefix>.value.bias",
//   "<prefix>.output.weight", "<prefix>.output.bias".
// Initialization: weights normal(0, sqrt(1 / dim)), biases 0.
//
// Thread-compatible: keeps the projections and the attention probabilities
// of the last Forward (for Backward and for the attention accessors);
// scratch buffers are reused across batches of the same shape.
//
// Example:
//   SelfAttention mha(16, 2);
//   mha.AppendDenseBlocks("bst.0.attention", &blocks);    // 8 blocks
//   const RowMatrix& y = mha.Forward(x, lengths, params);  // x: (B*L) x 16
//   mha.Backward(x, dy, params, grads, &dx);
//   mha.HeadAveragedAttention(i, lengths[i] - 1, weights);  // L floats
#ifndef TESSERA_MODELS_LAYERS_SELF_ATTENTION_H_
#define TESSERA_MODELS_LAYERS_SELF_ATTENTION_H_

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include <Eigen/Core>

#include "models/batch.h"
#include "models/model.h"

namespace tessera::models::layers {

class SelfAttention {
 public:
  // REQUIRES: dim > 0, heads > 0, dim % heads == 0.
  SelfAttention(uint32_t dim, uint32_t heads);

  uint32_t dim() const { return dim_; }
  uint32_t heads() const { return heads_; }
  uint32_t head_dim() const { return dim_ / heads_; }
  static constexpr int num_dense_blocks() { return 8; }

  void AppendDenseBlocks(const std::string& prefix, std::vector<DenseBlock>* blocks) const;

  // Returns y ((B * L) x dim), valid until the next Forward.
  // REQUIRES: x.cols() == dim(); x.rows() == lengths.size() * L for some
  // L >= every lengths[i] (x.rows() == 0 if lengths is empty); params are
  // the 8 blocks above.
  const RowMatrix& Forward(const RowMatrix& x, std::span<const uint32_t> lengths,
                           std::span<const std::span<const float>> params);

  // Backward of the last Forward (same x and params) given dy = d(loss)/dy:
  // overwrites `grads` (same layout as params) and, if dx is not null, sets
  // *dx = d(loss)/dx. Padding rows of dx are 0; dy on padding rows reaches
  // only the output bias's gradient (callers pass zeros there).
  void Backward(const RowMatrix& x, const RowMatrix& dy,
                std::span<const std::span<const float>> params,
                std::span<const std::span<float>> grads, RowMatrix* dx);

  // Shape of the last Forward.
  int batch_size() const { return static_cast<int>(lengths_.size()); }
  int max_length() const { return max_length_; }

  // The last Forward's attention probability of `query` on `key` in
  // example `example` and head `head`: sums to 1 over keys [0, length) for
  // a valid query; 0 for a padding key or a padding query.
  // REQUIRES: indices within the last Forward's shape.
  float attention(int example, int head, int query, int key) const;

  // weights[k] = the mean over heads of attention(example, h, query, k),
  // for k in [0, max_length()) (what explanations show: sums to 1 over the
  // valid keys when query is valid, all 0 otherwise).
  // REQUIRES: weights.size() == max_length(); indices as above.
  void HeadAveragedAttention(int example, int query, std::span<float> weights) const;

 private:
  const uint32_t dim_;
  const uint32_t heads_;
  std::vector<uint32_t> lengths_;  // of the last Forward
  int max_length_ = 0;
  RowMatrix q_, k_, v_;   // (B * L) x dim projections
  RowMatrix context_;     // (B * L) x dim, heads side by side; 0 on padding rows
  RowMatrix probs_;       // (B * heads * L) x L: block (i, h) at rows (i * heads + h) * L
  RowMatrix y_;
  // Backward scratch.
  RowMatrix dcontext_, dq_, dk_, dv_;
  RowMatrix dscores_;     // L x L
};

}  // namespace tessera::models::layers

#endif  // TESSERA_MODELS_LAYERS_SELF_ATTENTION_H_
