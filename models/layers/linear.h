// Fully connected layer over a row-major batch: y = x W + b, as GEMMs.
//
// Parameter layout (what the dense blocks hold): W is in x out, row-major, so
// W(i, j) is weight[i * out + j]; b is out floats. in = x.cols() and
// out = bias.size().
//
// Thread safety: pure functions over their arguments.
#ifndef TESSERA_MODELS_LAYERS_LINEAR_H_
#define TESSERA_MODELS_LAYERS_LINEAR_H_

#include <span>

#include "models/batch.h"

namespace tessera::models::layers {

// y = x W + b (y resized to x.rows() x out).
// REQUIRES: weight.size() == x.cols() * bias.size().
void LinearForward(const RowMatrix& x, std::span<const float> weight,
                   std::span<const float> bias, RowMatrix* y);

// Backward of LinearForward given dy = d(loss)/dy: overwrites
// dweight = x^T dy and dbias = column sums of dy; if dx is not null, sets
// dx = dy W^T (the gradient to pass down).
// REQUIRES: dy is x.rows() x bias.size(); dweight and dbias sized like
// weight and bias.
void LinearBackward(const RowMatrix& x, const RowMatrix& dy, std::span<const float> weight,
                    std::span<float> dweight, std::span<float> dbias, RowMatrix* dx);

// In place: x = max(x, 0).
void ReluForward(RowMatrix* x);

// Backward of ReluForward given its output y: dy(i, j) = 0 where y(i, j) <= 0.
// (ReLU's derivative at 0 is taken as 0; y = 0 exactly iff the input was <= 0.)
void ReluBackward(const RowMatrix& y, RowMatrix* dy);

}  // namespace tessera::models::layers

#endif  // TESSERA_MODELS_LAYERS_LINEAR_H_
