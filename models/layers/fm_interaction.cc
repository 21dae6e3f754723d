#include "models/layers/fm_interaction.h"

#include <cassert>

namespace tessera::models::layers {

void FmInteraction::Forward(const RowMatrix& e, std::span<float> out) {
  assert(e.cols() == static_cast<Eigen::Index>(num_fields_) * dim_);
  assert(static_cast<Eigen::Index>(out.size()) == e.rows());
  // Whole-batch column blocks (batch x dim) vectorize better than per-example
  // loops over dim-sized segments.
  sum_.resize(e.rows(), dim_);
  sum_.setZero();
  for (int f = 0; f < num_fields_; ++f) sum_ += e.middleCols(f * dim_, dim_);
  Eigen::Map<Eigen::VectorXf> result(out.data(), e.rows());
  result = 0.5f * (sum_.rowwise().squaredNorm() - e.rowwise().squaredNorm());
}

void FmInteraction::Backward(const RowMatrix& e, std::span<const float> dout,
                             RowMatrix* de) const {
  assert(de->rows() == e.rows() && de->cols() == e.cols());
  assert(sum_.rows() == e.rows());
  assert(static_cast<Eigen::Index>(dout.size()) == e.rows());
  Eigen::Map<const Eigen::VectorXf> scale(dout.data(), e.rows());
  for (int f = 0; f < num_fields_; ++f) {
    de->middleCols(f * dim_, dim_) +=
        scale.asDiagonal() * (sum_ - e.middleCols(f * dim_, dim_));
  }
}

}  // namespace tessera::models::layers
