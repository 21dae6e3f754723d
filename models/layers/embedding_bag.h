// Pooled embedding lookup ("embedding bag") of one categorical or sequence
// field: for each example, the pooled columns [first, first + width) of the
// table rows that the example's occurrences point at. A categorical field has
// 0 (missing) or 1 occurrence; a sequence field up to max_len. An example
// with no occurrence gets zeros (a missing feature contributes nothing).
//
// Sum pooling serves categorical fields (and would serve multi-hot ones);
// mean pooling is how lr/fm/deepfm see a behaviour sequence. Attention
// pooling (DIN/BST) needs a query per example and is a separate layer built
// on the same FieldBatch; these functions stay its building blocks (e.g. the
// lookup of the target item).
//
// Thread safety: pure functions over their arguments.
#ifndef TESSERA_MODELS_LAYERS_EMBEDDING_BAG_H_
#define TESSERA_MODELS_LAYERS_EMBEDDING_BAG_H_

#include <cstdint>

#include <Eigen/Core>

#include "models/batch.h"

namespace tessera::models::layers {

enum class Pooling : uint8_t { kSum, kMean };

// out.row(i) = pool over r in field's rows of example i of
// values.row(r).segment(first, out.cols()); zeros for no occurrence.
// REQUIRES: out.rows() == field.offsets.size() - 1; every row index <
// values.rows(); first + out.cols() <= values.cols().
void EmbeddingBagForward(const FieldBatch& field, const RowMatrix& values, int first,
                         Pooling pooling, Eigen::Ref<RowMatrix> out);

// Backward of EmbeddingBagForward: for each occurrence r of example i,
// grads->row(r).segment(first, dout.cols()) += scale * dout.row(i), with
// scale 1 (sum) or 1 / occurrences (mean). Accumulates: a key shared by
// several examples or fields sums its gradients.
// REQUIRES: grads has the shape of the `values` of the forward pass.
void EmbeddingBagBackward(const FieldBatch& field, Eigen::Ref<const RowMatrix> dout, int first,
                          Pooling pooling, RowMatrix* grads);

}  // namespace tessera::models::layers

#endif  // TESSERA_MODELS_LAYERS_EMBEDDING_BAG_H_
