#include "models/layers/history.h"

#include <algorithm>
#include <cassert>

namespace tessera::models::layers {

void History::Layout(const FieldBatch& field, int extra) {
  assert(!field.offsets.empty() && extra >= 0);
  const size_t n = field.offsets.size() - 1;
  lengths_.resize(n);
  uint32_t longest = 0;
  for (size_t i = 0; i < n; ++i) {
    lengths_[i] = field.offsets[i + 1] - field.offsets[i];
    longest = std::max(longest, lengths_[i]);
  }
  max_length_ = std::max(1, static_cast<int>(longest) + extra);
  const auto length = static_cast<size_t>(max_length_);
  table_rows_.assign(n * length, 0);
  for (size_t i = 0; i < n; ++i) {
    std::copy_n(field.rows.begin() + field.offsets[i], lengths_[i], table_rows_.begin() + i * length);
  }
}

void History::Gather(const RowMatrix& values, int first, int width, RowMatrix* out) const {
  assert(first >= 0 && first + width <= values.cols());
  const auto length = static_cast<size_t>(max_length_);
  out->setZero(static_cast<Eigen::Index>(lengths_.size() * length), width);
  for (size_t i = 0; i < lengths_.size(); ++i) {
    for (uint32_t p = 0; p < lengths_[i]; ++p) {
      const uint32_t r = table_rows_[i * length + p];
      assert(r < values.rows());
      const float* src = values.data() + r * values.cols() + first;
      std::copy_n(src, width, out->data() + (i * length + p) * width);
    }
  }
}

void History::ScatterAdd(const RowMatrix& dout, int first, RowMatrix* grads) const {
  const auto length = static_cast<size_t>(max_length_);
  const Eigen::Index width = dout.cols();
  assert(dout.rows() == static_cast<Eigen::Index>(lengths_.size() * length));
  assert(first >= 0 && first + width <= grads->cols());
  for (size_t i = 0; i < lengths_.size(); ++i) {
    for (uint32_t p = 0; p < lengths_[i]; ++p) {
      const uint32_t r = table_rows_[i * length + p];
      float* dst = grads->data() + r * grads->cols() + first;
      const float* src = dout.data() + (i * length + p) * width;
      for (Eigen::Index c = 0; c < width; ++c) dst[c] += src[c];
    }
  }
}

}  // namespace tessera::models::layers
