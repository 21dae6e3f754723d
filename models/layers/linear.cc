#include "models/layers/linear.h"

#include <cassert>

namespace tessera::models::layers {
namespace {

using ConstMatrixMap = Eigen::Map<const RowMatrix>;
using MatrixMap = Eigen::Map<RowMatrix>;
using ConstRowVectorMap = Eigen::Map<const Eigen::RowVectorXf>;
using RowVectorMap = Eigen::Map<Eigen::RowVectorXf>;

}  // namespace

void LinearForward(const RowMatrix& x, std::span<const float> weight,
                   std::span<const float> bias, RowMatrix* y) {
  const Eigen::Index in = x.cols();
  const Eigen::Index out = static_cast<Eigen::Index>(bias.size());
  assert(static_cast<Eigen::Index>(weight.size()) == in * out);
  ConstMatrixMap w(weight.data(), in, out);
  y->resize(x.rows(), out);
  y->noalias() = x * w;
  y->rowwise() += ConstRowVectorMap(bias.data(), out);
}

void LinearBackward(const RowMatrix& x, const RowMatrix& dy, std::span<const float> weight,
                    std::span<float> dweight, std::span<float> dbias, RowMatrix* dx) {
  const Eigen::Index in = x.cols();
  const Eigen::Index out = dy.cols();
  assert(dy.rows() == x.rows());
  assert(static_cast<Eigen::Index>(weight.size()) == in * out);
  assert(dweight.size() == weight.size() && static_cast<Eigen::Index>(dbias.size()) == out);
  MatrixMap(dweight.data(), in, out).noalias() = x.transpose() * dy;
  RowVectorMap(dbias.data(), out) = dy.colwise().sum();
  if (dx != nullptr) {
    dx->resize(x.rows(), in);
    dx->noalias() = dy * ConstMatrixMap(weight.data(), in, out).transpose();
  }
}

void ReluForward(RowMatrix* x) { *x = x->cwiseMax(0.0f); }

void ReluBackward(const RowMatrix& y, RowMatrix* dy) {
  assert(y.rows() == dy->rows() && y.cols() == dy->cols());
  *dy = (y.array() > 0.0f).select(dy->array(), 0.0f);
}

}  // namespace tessera::models::layers
