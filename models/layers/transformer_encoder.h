// One Transformer encoder layer over variable-length sequences, in one of
// two arrangements of its LayerNorms, fixed at construction:
//
// kPost: post-LN, as in BST (Chen et al. 2019) and the original Transformer
// (Vaswani et al. 2017); each sublayer's residual sum is normalized:
//   x1 = LN1(x + Dropout(MHA(x)))
//   y  = LN2(x1 + Dropout(FFN(x1)))
// kPre: pre-LN (Xiong et al. 2020, used by most modern Transformers); each
// sublayer normalizes its own input and the residual stream is never
// normalized inside the layer (no final LayerNorm):
//   x1 = x + Dropout(MHA(LN1(x)))
//   y  = x1 + Dropout(FFN(LN2(x1)))
// with FFN = Linear(dim, ffn_dim) -> ReLU -> Linear(ffn_dim, dim), per row.
// Why pre-LN exists: y is x plus sublayer outputs, so the residual stream
// keeps the input's scale (the output stays commensurate with the
// embeddings it is added to or compared with, where post-LN resets every
// row to unit variance), and the identity path from y back to x carries
// gradients through a stack unscaled, so training is more stable (Xiong et
// al.: no learning-rate warmup needed). A pre-LN stack usually ends with one
// LayerNorm of its own; that is the caller's choice, not this layer's.
//
// MHA is SelfAttention (see self_attention.h for the sequence layout: B
// blocks of L rows, example i's valid positions [0, lengths[i])); LN and
// FFN act on each row alone, so padding rows never change valid rows.
// Padding rows get some finite output that callers ignore. In both
// variants, Backward gives padding rows of dx equal to 0 when dy's padding
// rows are 0 (the residual path copies dy's zero rows; the sublayers'
// row-wise backward maps zero rows to zero rows and attention's dx is 0 on
// padding rows).
//
// Dropout (inverted: kept values scaled by 1 / (1 - rate)) only when
// Forward's `training` is true; its masks are a pure function of the
// Forward's `seed` (see DropoutMask), and Backward uses the last Forward's
// masks. At training = false the layer is deterministic and does not
// depend on the rate.
//
// Parameters are 16 dense blocks, in order, the same names for both
// variants (ln1 normalizes the attention's residual sum in kPost and the
// attention's input in kPre; ln2 likewise for the FFN):
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
//   TransformerEncoder layer(16, 2, 64, 0.1f, TransformerEncoder::Norm::kPre);
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
  // Where the LayerNorms sit (see the file comment).
  enum class Norm {
    kPost,  // LN after each residual sum: BST and the original Transformer
    kPre,   // LN on each sublayer's input (Xiong et al. 2020)
  };

  // REQUIRES: dim > 0, heads > 0, dim % heads == 0, ffn_dim > 0,
  // 0 <= dropout < 1.
  TransformerEncoder(uint32_t dim, uint32_t heads, uint32_t ffn_dim, float dropout,
                     Norm norm = Norm::kPost);

  uint32_t dim() const { return attention_.dim(); }
  uint32_t heads() const { return attention_.heads(); }
  uint32_t ffn_dim() const { return ffn_dim_; }
  float dropout() const { return dropout_; }
  Norm norm() const { return norm_; }
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
  const RowMatrix& ForwardPost(const RowMatrix& x, std::span<const uint32_t> lengths,
                               std::span<const std::span<const float>> params);
  const RowMatrix& ForwardPre(const RowMatrix& x, std::span<const uint32_t> lengths,
                              std::span<const std::span<const float>> params);
  void BackwardPost(const RowMatrix& x, const RowMatrix& dy,
                    std::span<const std::span<const float>> params,
                    std::span<const std::span<float>> grads, RowMatrix* dx);
  void BackwardPre(const RowMatrix& dy, std::span<const std::span<const float>> params,
                   std::span<const std::span<float>> grads, RowMatrix* dx);

  const uint32_t ffn_dim_;
  const float dropout_;
  const Norm norm_;
  SelfAttention attention_;
  LayerNorm norm1_;
  Mlp ffn_;
  LayerNorm norm2_;
  bool dropout_active_ = false;  // of the last Forward
  RowMatrix attention_mask_, ffn_mask_;  // dropout factors, when active
  // The residual sums: kPost, the inputs of LN1 and LN2; kPre, x1 and y.
  RowMatrix sum1_, sum2_;
  // Backward scratch (dnorm_: kPre's gradient w.r.t. an LN output).
  RowMatrix dsum2_, dffn_, dx1_, dsum1_, dattention_, dnorm_;
};

}  // namespace tessera::models::layers

#endif  // TESSERA_MODELS_LAYERS_TRANSFORMER_ENCODER_H_
