// One Transformer encoder layer over variable-length sequences, post-LN as
// in BST (Chen et al. 2019) and the original Transformer:
//   x1 = LN1(x + Dropout(MHA(x)))
//   y  = LN2(x1 + Dropout(FFN(x1))),  FFN = Linear(dim, ffn_dim) -> ReLU ->
//                                            Linear(ffn_dim, dim), per row
// MHA is SelfAttention (see self_attention.h for the sequence layout: B
// blocks of L rows, example i's valid positions [0, lengths[i])); LN and
// FFN act on each row alone, so padding rows never change valid rows.
// Padding rows get some finite output that callers ignore.
//
// Dropout (inverted: kept values scaled by 1 / (1 - rate)) only when
// Forward's `training` is true; its masks are a pure function of the
// Forward's `seed` (see DropoutMask), and Backward uses the last Forward's
// masks. At training = false the layer is deterministic and does not
// depend on the rate.
//
// Parameters are 16 dense blocks, in order:
//   "<prefix>.attention.{query,key,value,output}.{weight,bias}"  8 (self_attention.h)
//   "<prefix>.ln1.gain", "<prefix>.ln1.bias"                      2 (layer_norm.h)
//   "<prefix>.ffn.0.weight" (dim x ffn_dim), "<prefix>.ffn.0.bias",
//   "<prefix>.ffn.1.weight" (ffn_dim x dim), "<prefix>.ffn.1.bias" 4 (mlp.h)
//   "<prefix>.ln2.gain", "<prefix>.ln2.bias"                      2
// Initialization: attention weights sqrt(1 / dim); FFN as Mlp (He for the
// first layer, sqrt(1 / ffn_dim) for the second); LayerNorm gamma 1
// (gain 0); every bias 0.
//
// Thread-compatible: keeps the activations and dropout masks of the last
// Forward for Backward and for attention(); scratch buffers are reused.
//
// Example:
//   TransformerEncoder layer(16, 2, 64, 0.1f);
//   layer.AppendDenseBlocks("bst.0", &blocks);  // 16 blocks
//   const RowMatrix& y = layer.Forward(x, lengths, params, /*training=*/true, seed);
//   layer.Backward(x, dy, params, grads, &dx);
//   layer.attention().HeadAveragedAttention(i, lengths[i] - 1, weights);
#ifndef TESSERA_MODELS_LAYERS_TRANSFORMER_ENCODER_H_
#define TESSERA_MODELS_LAYERS_TRANSFORMER_ENCODER_H_

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include <Eigen/Core>

#include "models/batch.h"
#include "models/layers/layer_norm.h"
#include "models/layers/mlp.h"
#include "models/layers/self_attention.h"
#include "models/model.h"

namespace tessera::models::layers {

// Sets *mask to rows x cols inverted-dropout factors: 0 with probability
// `rate`, else 1 / (1 - rate), independently per entry. Deterministic: a
// pure function of (seed, stream) and the entry's index, so two calls with
// the same arguments give the same mask and different streams (or seeds)
// give independent ones.
// REQUIRES: 0 <= rate < 1.
void DropoutMask(float rate, uint64_t seed, uint64_t stream, Eigen::Index rows,
                 Eigen::Index cols, RowMatrix* mask);

class TransformerEncoder {
 public:
  // REQUIRES: dim > 0, heads > 0, dim % heads == 0, ffn_dim > 0,
  // 0 <= dropout < 1.
  TransformerEncoder(uint32_t dim, uint32_t heads, uint32_t ffn_dim, float dropout);

  uint32_t dim() const { return attention_.dim(); }
  uint32_t heads() const { return attention_.heads(); }
  uint32_t ffn_dim() const { return ffn_dim_; }
  float dropout() const { return dropout_; }
  static constexpr int num_dense_blocks() { return 16; }

  void AppendDenseBlocks(const std::string& prefix, std::vector<DenseBlock>* blocks) const;

  // Returns y ((B * L) x dim), valid until the next Forward. `training`
  // turns dropout on; `seed` selects its masks (callers of a stack pass a
  // different seed per batch and per layer, e.g. a hash of step and layer).
  // REQUIRES: x and lengths as in SelfAttention::Forward; params are the 16
  // blocks above.
  const RowMatrix& Forward(const RowMatrix& x, std::span<const uint32_t> lengths,
                           std::span<const std::span<const float>> params, bool training,
                           uint64_t seed);

  // Backward of the last Forward (same x and params; the same dropout
  // masks) given dy = d(loss)/dy: overwrites `grads` (same layout as params)
  // and, if dx is not null, sets *dx = d(loss)/dx.
  // REQUIRES: dy rows of padding positions are 0 (their outputs are
  // ignored); otherwise they would reach the parameters through LN and FFN.
  void Backward(const RowMatrix& x, const RowMatrix& dy,
                std::span<const std::span<const float>> params,
                std::span<const std::span<float>> grads, RowMatrix* dx);

  // The attention sublayer: its probabilities of the last Forward.
  const SelfAttention& attention() const { return attention_; }

 private:
  const uint32_t ffn_dim_;
  const float dropout_;
  SelfAttention attention_;
  LayerNorm norm1_;
  Mlp ffn_;
  LayerNorm norm2_;
  bool dropout_active_ = false;  // of the last Forward
  RowMatrix attention_mask_, ffn_mask_;  // dropout factors, when active
  RowMatrix sum1_, sum2_;                // the LayerNorm inputs
  // Backward scratch.
  RowMatrix dsum2_, dffn_, dx1_, dsum1_, dattention_;
};

}  // namespace tessera::models::layers

#endif  // TESSERA_MODELS_LAYERS_TRANSFORMER_ENCODER_H_
