#include "models/layers/transformer_encoder.h"

#include <cassert>

namespace tessera::models::layers {
namespace {

// Block offsets in the layer's params (see the header).
constexpr size_t kAttention = 0;
constexpr size_t kNorm1 = kAttention + SelfAttention::num_dense_blocks();
constexpr size_t kFfn = kNorm1 + LayerNorm::num_dense_blocks();
constexpr size_t kFfnBlocks = 4;  // Mlp(dim, {ffn_dim}, dim)
constexpr size_t kNorm2 = kFfn + kFfnBlocks;
static_assert(kNorm2 + LayerNorm::num_dense_blocks() == 16);

// Dropout streams of the two sites.
constexpr uint64_t kAttentionStream = 0;
constexpr uint64_t kFfnStream = 1;

// SplitMix64's output function: a bijective mixer with good avalanche.
uint64_t Mix(uint64_t z) {
  z += 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// x (+)= (mask .* a) or a.
void AddMaybeMasked(const RowMatrix& x, const RowMatrix& a, bool masked, const RowMatrix& mask,
                    RowMatrix* out) {
  if (masked) {
    *out = x + a.cwiseProduct(mask);
  } else {
    *out = x + a;
  }
}

}  // namespace

void DropoutMask(float rate, uint64_t seed, uint64_t stream, Eigen::Index rows,
                 Eigen::Index cols, RowMatrix* mask) {
  assert(rate >= 0.0f && rate < 1.0f);
  mask->resize(rows, cols);
  // Keep iff a uniform 24-bit draw is >= rate * 2^24.
  const uint64_t threshold = static_cast<uint64_t>(static_cast<double>(rate) * (1 << 24));
  const float keep = 1.0f / (1.0f - rate);
  const uint64_t base = Mix(seed ^ Mix(stream));
  float* data = mask->data();
  for (Eigen::Index j = 0; j < mask->size(); ++j) {
    data[j] = (Mix(base + static_cast<uint64_t>(j)) >> 40) >= threshold ? keep : 0.0f;
  }
}

TransformerEncoder::TransformerEncoder(uint32_t dim, uint32_t heads, uint32_t ffn_dim,
                                       float dropout, Norm norm)
    : ffn_dim_(ffn_dim), dropout_(dropout), norm_(norm), attention_(dim, heads), norm1_(dim),
      ffn_(dim, {ffn_dim}, dim), norm2_(dim) {
  assert(ffn_dim > 0 && dropout >= 0.0f && dropout < 1.0f);
}

void TransformerEncoder::AppendDenseBlocks(const std::string& prefix,
                                           std::vector<DenseBlock>* blocks) const {
  attention_.AppendDenseBlocks(prefix + ".attention", blocks);
  norm1_.AppendDenseBlocks(prefix + ".ln1", blocks);
  ffn_.AppendDenseBlocks(prefix + ".ffn", blocks);
  norm2_.AppendDenseBlocks(prefix + ".ln2", blocks);
}

const RowMatrix& TransformerEncoder::Forward(const RowMatrix& x,
                                             std::span<const uint32_t> lengths,
                                             std::span<const std::span<const float>> params,
                                             bool training, uint64_t seed) {
  assert(static_cast<int>(params.size()) == num_dense_blocks());
  assert(ffn_.num_dense_blocks() == static_cast<int>(kFfnBlocks));
  dropout_active_ = training && dropout_ > 0.0f;
  if (dropout_active_) {
    DropoutMask(dropout_, seed, kAttentionStream, x.rows(), x.cols(), &attention_mask_);
    DropoutMask(dropout_, seed, kFfnStream, x.rows(), x.cols(), &ffn_mask_);
  }
  return norm_ == Norm::kPre ? ForwardPre(x, lengths, params) : ForwardPost(x, lengths, params);
}

const RowMatrix& TransformerEncoder::ForwardPost(const RowMatrix& x,
                                                 std::span<const uint32_t> lengths,
                                                 std::span<const std::span<const float>> params) {
  const RowMatrix& a = attention_.Forward(x, lengths, params.subspan(kAttention, kNorm1));
  AddMaybeMasked(x, a, dropout_active_, attention_mask_, &sum1_);
  const RowMatrix& x1 = norm1_.Forward(sum1_, params.subspan(kNorm1, 2));
  const RowMatrix& f = ffn_.Forward(x1, params.subspan(kFfn, kFfnBlocks));
  AddMaybeMasked(x1, f, dropout_active_, ffn_mask_, &sum2_);
  return norm2_.Forward(sum2_, params.subspan(kNorm2, 2));
}

const RowMatrix& TransformerEncoder::ForwardPre(const RowMatrix& x,
                                                std::span<const uint32_t> lengths,
                                                std::span<const std::span<const float>> params) {
  const RowMatrix& h1 = norm1_.Forward(x, params.subspan(kNorm1, 2));
  const RowMatrix& a = attention_.Forward(h1, lengths, params.subspan(kAttention, kNorm1));
  AddMaybeMasked(x, a, dropout_active_, attention_mask_, &sum1_);  // x1
  const RowMatrix& h2 = norm2_.Forward(sum1_, params.subspan(kNorm2, 2));
  const RowMatrix& f = ffn_.Forward(h2, params.subspan(kFfn, kFfnBlocks));
  AddMaybeMasked(sum1_, f, dropout_active_, ffn_mask_, &sum2_);  // y
  return sum2_;
}

void TransformerEncoder::Backward(const RowMatrix& x, const RowMatrix& dy,
                                  std::span<const std::span<const float>> params,
                                  std::span<const std::span<float>> grads, RowMatrix* dx) {
  assert(static_cast<int>(params.size()) == num_dense_blocks());
  assert(static_cast<int>(grads.size()) == num_dense_blocks());
  if (norm_ == Norm::kPre) {
    BackwardPre(dy, params, grads, dx);  // needs no x: LN1 keeps its output
  } else {
    BackwardPost(x, dy, params, grads, dx);
  }
}

void TransformerEncoder::BackwardPost(const RowMatrix& x, const RowMatrix& dy,
                                      std::span<const std::span<const float>> params,
                                      std::span<const std::span<float>> grads, RowMatrix* dx) {
  norm2_.Backward(dy, params.subspan(kNorm2, 2), grads.subspan(kNorm2, 2), &dsum2_);
  // sum2 = x1 + mask .* FFN(x1).
  const RowMatrix* dffn = &dsum2_;
  if (dropout_active_) {
    dffn_ = dsum2_.cwiseProduct(ffn_mask_);
    dffn = &dffn_;
  }
  ffn_.Backward(norm1_.output(), *dffn, params.subspan(kFfn, kFfnBlocks),
                grads.subspan(kFfn, kFfnBlocks), &dx1_);
  dx1_ += dsum2_;
  norm1_.Backward(dx1_, params.subspan(kNorm1, 2), grads.subspan(kNorm1, 2), &dsum1_);
  // sum1 = x + mask .* MHA(x).
  const RowMatrix* dattention = &dsum1_;
  if (dropout_active_) {
    dattention_ = dsum1_.cwiseProduct(attention_mask_);
    dattention = &dattention_;
  }
  attention_.Backward(x, *dattention, params.subspan(kAttention, kNorm1),
                      grads.subspan(kAttention, kNorm1), dx);
  if (dx != nullptr) *dx += dsum1_;
}

void TransformerEncoder::BackwardPre(const RowMatrix& dy,
                                     std::span<const std::span<const float>> params,
                                     std::span<const std::span<float>> grads, RowMatrix* dx) {
  // y = x1 + mask .* FFN(LN2(x1)).
  const RowMatrix* dffn = &dy;
  if (dropout_active_) {
    dffn_ = dy.cwiseProduct(ffn_mask_);
    dffn = &dffn_;
  }
  ffn_.Backward(norm2_.output(), *dffn, params.subspan(kFfn, kFfnBlocks),
                grads.subspan(kFfn, kFfnBlocks), &dnorm_);
  norm2_.Backward(dnorm_, params.subspan(kNorm2, 2), grads.subspan(kNorm2, 2), &dx1_);
  dx1_ += dy;
  // x1 = x + mask .* MHA(LN1(x)).
  const RowMatrix* dattention = &dx1_;
  if (dropout_active_) {
    dattention_ = dx1_.cwiseProduct(attention_mask_);
    dattention = &dattention_;
  }
  attention_.Backward(norm1_.output(), *dattention, params.subspan(kAttention, kNorm1),
                      grads.subspan(kAttention, kNorm1), &dnorm_);
  // LN1's parameter gradients are needed even when dx is not.
  norm1_.Backward(dnorm_, params.subspan(kNorm1, 2), grads.subspan(kNorm1, 2), dx);
  if (dx != nullptr) *dx += dx1_;
}

}  // namespace tessera::models::layers
