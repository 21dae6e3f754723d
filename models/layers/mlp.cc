#include "models/layers/mlp.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <string>
#include <utility>

#include "models/layers/linear.h"

namespace tessera::models::layers {
namespace {

std::vector<uint32_t> Dims(uint32_t in, std::vector<uint32_t> hidden, uint32_t out) {
  std::vector<uint32_t> dims;
  dims.reserve(hidden.size() + 2);
  dims.push_back(in);
  dims.insert(dims.end(), hidden.begin(), hidden.end());
  dims.push_back(out);
  return dims;
}

}  // namespace

Mlp::Mlp(uint32_t in, std::vector<uint32_t> hidden, uint32_t out)
    : dims_(Dims(in, std::move(hidden), out)), outputs_(dims_.size() - 1),
      output_grads_(dims_.size() - 1) {
  assert(std::all_of(dims_.begin(), dims_.end(), [](uint32_t d) { return d > 0; }));
}

void Mlp::AppendDenseBlocks(const std::string& prefix, std::vector<DenseBlock>* blocks) const {
  for (int l = 0; l < num_layers(); ++l) {
    const uint64_t in = dims_[l];
    const uint64_t out = dims_[l + 1];
    const bool relu = l + 1 < num_layers();
    const std::string name = prefix + "." + std::to_string(l);
    blocks->push_back({.name = name + ".weight",
                       .size = in * out,
                       .init_stddev = static_cast<float>(std::sqrt((relu ? 2.0 : 1.0) / in))});
    blocks->push_back({.name = name + ".bias", .size = out, .init_stddev = 0.0f});
  }
}

const RowMatrix& Mlp::Forward(const RowMatrix& x, std::span<const std::span<const float>> params) {
  assert(x.cols() == static_cast<Eigen::Index>(in()));
  assert(static_cast<int>(params.size()) == num_dense_blocks());
  const RowMatrix* input = &x;
  for (int l = 0; l < num_layers(); ++l) {
    LinearForward(*input, params[2 * l], params[2 * l + 1], &outputs_[l]);
    if (l + 1 < num_layers()) ReluForward(&outputs_[l]);
    input = &outputs_[l];
  }
  return outputs_.back();
}

void Mlp::Backward(const RowMatrix& x, const RowMatrix& dy,
                   std::span<const std::span<const float>> params,
                   std::span<const std::span<float>> grads, RowMatrix* dx) {
  assert(static_cast<int>(params.size()) == num_dense_blocks());
  assert(static_cast<int>(grads.size()) == num_dense_blocks());
  assert(dy.rows() == x.rows() && dy.cols() == static_cast<Eigen::Index>(out()));
  const RowMatrix* grad_out = &dy;
  for (int l = num_layers() - 1; l >= 0; --l) {
    const RowMatrix& input = l == 0 ? x : outputs_[l - 1];
    RowMatrix* grad_in = l == 0 ? dx : &output_grads_[l - 1];
    LinearBackward(input, *grad_out, params[2 * l], grads[2 * l], grads[2 * l + 1], grad_in);
    if (l == 0) break;
    ReluBackward(outputs_[l - 1], grad_in);
    grad_out = grad_in;
  }
}

}  // namespace tessera::models::layers
