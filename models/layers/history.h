// The tokens of a sequence field laid out for attention: example i's kept
// history (its FieldBatch occurrences, oldest first, at most max_len) fills
// positions [0, lengths()[i]) of a block of max_length() rows; the rest of
// the block is zero padding. Gathered embeddings are a (batch *
// max_length()) x width matrix, example i's block at rows [i * L, (i+1) * L).
//
// `extra` positions (BST appends the target) are reserved after each
// example's history: lengths() counts only history tokens, and positions
// lengths()[i] .. lengths()[i] + extra - 1 are left for the caller to fill.
// max_length() = the longest history in the batch + extra (at least 1), so a
// batch of short histories costs little.
//
// Thread-compatible: scratch buffers reused across batches.
#ifndef TESSERA_MODELS_LAYERS_HISTORY_H_
#define TESSERA_MODELS_LAYERS_HISTORY_H_

#include <cstdint>
#include <span>
#include <vector>

#include <Eigen/Core>

#include "models/batch.h"

namespace tessera::models::layers {

class History {
 public:
  // Lays out `field`'s occurrences (field.offsets.size() - 1 examples).
  void Layout(const FieldBatch& field, int extra);

  int batch_size() const { return static_cast<int>(lengths_.size()); }
  int max_length() const { return max_length_; }
  // History tokens per example (excluding the extra positions).
  std::span<const uint32_t> lengths() const { return lengths_; }

  // out: (batch_size() * max_length()) x width; the row of token p of
  // example i is values.row(r).segment(first, width) for its table row r;
  // every other row (padding and extra positions) is zero.
  // REQUIRES: Layout was called for a field of `values`' table.
  void Gather(const RowMatrix& values, int first, int width, RowMatrix* out) const;

  // Backward of Gather: grads->row(r).segment(first, dout.cols()) += the
  // dout row of every token that came from table row r. Padding and extra
  // rows of dout are ignored.
  void ScatterAdd(const RowMatrix& dout, int first, RowMatrix* grads) const;

 private:
  std::vector<uint32_t> lengths_;
  std::vector<uint32_t> table_rows_;  // batch * max_length, valid where p < length
  int max_length_ = 1;
};

}  // namespace tessera::models::layers

#endif  // TESSERA_MODELS_LAYERS_HISTORY_H_
