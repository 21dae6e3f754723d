// Row-wise softmax over a prefix of each row: the first `valid` entries of a
// row are normalized (numerically stable: the row's max is subtracted before
// exp), every entry after them is set to 0. A row with valid == 0 (all
// masked) becomes all zeros, never NaN. Used for attention over
// variable-length sequences whose keys are left-aligned (masked keys are
// the padding at the end of each example's block).
//
// Thread safety: pure functions over their arguments.
//
// Example (scores of 3 queries over 4 keys, of which 2 are valid):
//   RowMatrix s = ...;                       // 3 x 4
//   MaskedSoftmax(s, 2);                     // s(r, 2) == s(r, 3) == 0
//   RowMatrix ds = ...;                      // d(loss)/d(softmax output)
//   MaskedSoftmaxBackward(s, ds);            // ds is now d(loss)/d(scores)
#ifndef TESSERA_MODELS_LAYERS_MASKED_SOFTMAX_H_
#define TESSERA_MODELS_LAYERS_MASKED_SOFTMAX_H_

#include <cstdint>
#include <span>

#include <Eigen/Core>

#include "models/batch.h"

namespace tessera::models::layers {

// In place: row r of x becomes softmax(x(r, 0 .. valid_per_row[r] - 1))
// followed by zeros.
// REQUIRES: valid_per_row.size() == x.rows(); valid_per_row[r] <= x.cols().
void MaskedSoftmax(Eigen::Ref<RowMatrix> x, std::span<const uint32_t> valid_per_row);

// The same with `valid` entries in every row.
// REQUIRES: valid <= x.cols().
void MaskedSoftmax(Eigen::Ref<RowMatrix> x, uint32_t valid);

// Backward of MaskedSoftmax given its output y: on entry `dy` holds
// d(loss)/dy, on return d(loss)/dx, row by row dx = y .* (dy - <y, dy>).
// Masked entries (where y is 0) get 0, so no mask is needed here; dy there
// is ignored as long as it is finite.
// REQUIRES: y and dy have the same shape.
void MaskedSoftmaxBackward(Eigen::Ref<const RowMatrix> y, Eigen::Ref<RowMatrix> dy);

}  // namespace tessera::models::layers

#endif  // TESSERA_MODELS_LAYERS_MASKED_SOFTMAX_H_
