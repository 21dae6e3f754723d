#include "models/layers/embedding_bag.h"

#include <cassert>

namespace tessera::models::layers {

void EmbeddingBagForward(const FieldBatch& field, const RowMatrix& values, int first,
                         Pooling pooling, Eigen::Ref<RowMatrix> out) {
  const Eigen::Index width = out.cols();
  const Eigen::Index n = out.rows();
  assert(static_cast<Eigen::Index>(field.offsets.size()) == n + 1);
  assert(first >= 0 && first + width <= values.cols());
  for (Eigen::Index i = 0; i < n; ++i) {
    const uint32_t begin = field.offsets[i];
    const uint32_t end = field.offsets[i + 1];
    auto dst = out.row(i);
    if (begin == end) {
      dst.setZero();
      continue;
    }
    assert(field.rows[begin] < values.rows());
    dst = values.row(field.rows[begin]).segment(first, width);
    for (uint32_t j = begin + 1; j < end; ++j) {
      assert(field.rows[j] < values.rows());
      dst += values.row(field.rows[j]).segment(first, width);
    }
    if (pooling == Pooling::kMean && end - begin > 1) {
      dst *= 1.0f / static_cast<float>(end - begin);
    }
  }
}

void EmbeddingBagBackward(const FieldBatch& field, Eigen::Ref<const RowMatrix> dout, int first,
                          Pooling pooling, RowMatrix* grads) {
  const Eigen::Index width = dout.cols();
  const Eigen::Index n = dout.rows();
  assert(static_cast<Eigen::Index>(field.offsets.size()) == n + 1);
  assert(first >= 0 && first + width <= grads->cols());
  for (Eigen::Index i = 0; i < n; ++i) {
    const uint32_t begin = field.offsets[i];
    const uint32_t end = field.offsets[i + 1];
    if (begin == end) continue;
    const float scale =
        pooling == Pooling::kMean ? 1.0f / static_cast<float>(end - begin) : 1.0f;
    for (uint32_t j = begin; j < end; ++j) {
      assert(field.rows[j] < grads->rows());
      grads->row(field.rows[j]).segment(first, width) += scale * dout.row(i);
    }
  }
}

}  // namespace tessera::models::layers
