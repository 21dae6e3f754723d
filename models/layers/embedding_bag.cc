#include "models/layers/embedding_bag.h"

#include <algorithm>
#include <cassert>

namespace tessera::models::layers {

// Plain loops over raw rows: the widths are small (1 or the embedding dim),
// where Eigen's dynamic-size segment expressions cost more than the work;
// gcc vectorizes these loops.

void EmbeddingBagForward(const FieldBatch& field, const RowMatrix& values, int first,
                         Pooling pooling, Eigen::Ref<RowMatrix> out) {
  const Eigen::Index width = out.cols();
  const Eigen::Index n = out.rows();
  assert(static_cast<Eigen::Index>(field.offsets.size()) == n + 1);
  assert(first >= 0 && first + width <= values.cols());
  const Eigen::Index in_stride = values.cols();
  const float* base = values.data() + first;
  for (Eigen::Index i = 0; i < n; ++i) {
    const uint32_t begin = field.offsets[i];
    const uint32_t end = field.offsets[i + 1];
    float* dst = out.data() + i * out.outerStride();
    if (begin == end) {
      std::fill_n(dst, width, 0.0f);
      continue;
    }
    assert(field.rows[begin] < values.rows());
    const float* src = base + field.rows[begin] * in_stride;
    for (Eigen::Index c = 0; c < width; ++c) dst[c] = src[c];
    if (end - begin == 1) continue;
    for (uint32_t j = begin + 1; j < end; ++j) {
      assert(field.rows[j] < values.rows());
      src = base + field.rows[j] * in_stride;
      for (Eigen::Index c = 0; c < width; ++c) dst[c] += src[c];
    }
    if (pooling == Pooling::kMean) {
      const float scale = 1.0f / static_cast<float>(end - begin);
      for (Eigen::Index c = 0; c < width; ++c) dst[c] *= scale;
    }
  }
}

void EmbeddingBagBackward(const FieldBatch& field, Eigen::Ref<const RowMatrix> dout, int first,
                          Pooling pooling, RowMatrix* grads) {
  const Eigen::Index width = dout.cols();
  const Eigen::Index n = dout.rows();
  assert(static_cast<Eigen::Index>(field.offsets.size()) == n + 1);
  assert(first >= 0 && first + width <= grads->cols());
  const Eigen::Index out_stride = grads->cols();
  float* base = grads->data() + first;
  for (Eigen::Index i = 0; i < n; ++i) {
    const uint32_t begin = field.offsets[i];
    const uint32_t end = field.offsets[i + 1];
    if (begin == end) continue;
    const float* src = dout.data() + i * dout.outerStride();
    const float scale =
        pooling == Pooling::kMean ? 1.0f / static_cast<float>(end - begin) : 1.0f;
    for (uint32_t j = begin; j < end; ++j) {
      assert(field.rows[j] < grads->rows());
      float* dst = base + field.rows[j] * out_stride;
      for (Eigen::Index c = 0; c < width; ++c) dst[c] += scale * src[c];
    }
  }
}

}  // namespace tessera::models::layers
