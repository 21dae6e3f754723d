#include "models/layers/explain_util.h"

#include <cassert>

namespace tessera::models::layers {

std::vector<FieldColumns> ConsecutiveFieldColumns(int num_fields, int dim) {
  std::vector<FieldColumns> columns;
  columns.reserve(num_fields);
  for (int f = 0; f < num_fields; ++f) {
    columns.push_back({.field = f, .begin = f * dim, .size = dim});
  }
  return columns;
}

void ResetExplanations(int batch_size, int num_fields, float bias,
                       std::vector<Explanation>* out) {
  out->resize(batch_size);
  for (Explanation& e : *out) {
    e.logit = 0;
    e.bias = bias;
    e.fields.assign(num_fields, 0.0f);
    e.attention.clear();
  }
}

void AddFieldTerms(const RowMatrix& terms, std::vector<Explanation>* out) {
  assert(terms.rows() == static_cast<Eigen::Index>(out->size()));
  for (Eigen::Index i = 0; i < terms.rows(); ++i) {
    std::vector<float>& fields = (*out)[i].fields;
    assert(terms.cols() == static_cast<Eigen::Index>(fields.size()));
    for (Eigen::Index f = 0; f < terms.cols(); ++f) fields[f] += terms(i, f);
  }
}

void AddFmShares(const RowMatrix& embeddings, int num_fields, int dim,
                 std::vector<Explanation>* out) {
  const Eigen::Index n = embeddings.rows();
  assert(n == static_cast<Eigen::Index>(out->size()));
  assert(embeddings.cols() == static_cast<Eigen::Index>(num_fields) * dim);
  RowMatrix sum = RowMatrix::Zero(n, dim);
  for (int f = 0; f < num_fields; ++f) sum += embeddings.middleCols(f * dim, dim);
  for (int f = 0; f < num_fields; ++f) {
    const auto v = embeddings.middleCols(f * dim, dim);
    // 0.5 * <v_f, s - v_f>, whole batch at once.
    const Eigen::VectorXf share = 0.5f * (v.cwiseProduct(sum - v)).rowwise().sum();
    for (Eigen::Index i = 0; i < n; ++i) {
      assert(f < static_cast<int>((*out)[i].fields.size()));
      (*out)[i].fields[f] += share(i);
    }
  }
}

void AddMlpGradientTimesInput(Mlp* mlp, const RowMatrix& x,
                              std::span<const std::span<const float>> params,
                              std::span<const FieldColumns> slices,
                              std::vector<Explanation>* out) {
  const Eigen::Index n = x.rows();
  assert(n == static_cast<Eigen::Index>(out->size()));
  assert(mlp->out() == 1);
  const Eigen::VectorXf y = mlp->Forward(x, params).col(0);
  // dy = 1: dx(i, c) = d y_i / d x(i, c). The parameter gradients are not
  // wanted; they go to scratch.
  const RowMatrix dy = RowMatrix::Ones(n, 1);
  std::vector<std::vector<float>> scratch;
  std::vector<std::span<float>> grads;
  scratch.reserve(params.size());
  grads.reserve(params.size());
  for (const std::span<const float> p : params) grads.emplace_back(scratch.emplace_back(p.size()));
  RowMatrix dx;
  mlp->Backward(x, dy, params, grads, &dx);
  Eigen::VectorXf owned = Eigen::VectorXf::Zero(n);
  for (const FieldColumns& slice : slices) {
    assert(slice.begin >= 0 && slice.begin + slice.size <= x.cols());
    const Eigen::VectorXf share = x.middleCols(slice.begin, slice.size)
                                      .cwiseProduct(dx.middleCols(slice.begin, slice.size))
                                      .rowwise()
                                      .sum();
    owned += share;
    for (Eigen::Index i = 0; i < n; ++i) {
      assert(slice.field >= 0 && slice.field < static_cast<int>((*out)[i].fields.size()));
      (*out)[i].fields[slice.field] += share(i);
    }
  }
  for (Eigen::Index i = 0; i < n; ++i) (*out)[i].bias += y(i) - owned(i);
}

void SetLogits(std::span<const float> logits, std::vector<Explanation>* out) {
  assert(logits.size() == out->size());
  for (size_t i = 0; i < logits.size(); ++i) (*out)[i].logit = logits[i];
}

}  // namespace tessera::models::layers
