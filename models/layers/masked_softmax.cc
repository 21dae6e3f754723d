#include "models/layers/masked_softmax.h"

#include <cassert>

namespace tessera::models::layers {
namespace {

void SoftmaxRow(Eigen::Ref<RowMatrix> x, Eigen::Index r, Eigen::Index valid) {
  auto row = x.row(r);
  if (valid < x.cols()) row.tail(x.cols() - valid).setZero();
  if (valid == 0) return;
  auto head = row.head(valid).array();
  const float max = head.maxCoeff();
  head = (head - max).exp();
  head /= head.sum();  // >= 1: the max entry contributes exp(0)
}

}  // namespace

void MaskedSoftmax(Eigen::Ref<RowMatrix> x, std::span<const uint32_t> valid_per_row) {
  assert(static_cast<Eigen::Index>(valid_per_row.size()) == x.rows());
  for (Eigen::Index r = 0; r < x.rows(); ++r) {
    assert(valid_per_row[r] <= x.cols());
    SoftmaxRow(x, r, valid_per_row[r]);
  }
}

void MaskedSoftmax(Eigen::Ref<RowMatrix> x, uint32_t valid) {
  assert(valid <= x.cols());
  for (Eigen::Index r = 0; r < x.rows(); ++r) SoftmaxRow(x, r, valid);
}

void MaskedSoftmaxBackward(Eigen::Ref<const RowMatrix> y, Eigen::Ref<RowMatrix> dy) {
  assert(y.rows() == dy.rows() && y.cols() == dy.cols());
  for (Eigen::Index r = 0; r < y.rows(); ++r) {
    const float dot = y.row(r).dot(dy.row(r));
    dy.row(r).array() = y.row(r).array() * (dy.row(r).array() - dot);
  }
}

}  // namespace tessera::models::layers
