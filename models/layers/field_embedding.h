// The per-field inputs of the factorization models (lr, fm, deepfm): one slot
// per schema field, slot index = field index in Schema::fields(), so every
// field, present in the batch or not, has a fixed place:
//   linear()     batch x F: the field's first-order term: the weight w of
//                its key (0 if missing; mean of the keys' w for a sequence),
//                or x * numeric_w[j] for numeric column j;
//   embeddings() batch x (F * dim): the field's factor vector at columns
//                [f * dim, (f + 1) * dim): v of its key (zeros if missing;
//                mean-pooled for a sequence), or x * numeric_v[j] for a
//                numeric field (a per-field vector scaled by the value).
// With dim = 0 (lr) only linear() is computed.
//
// Sparse rows are 1 + dim floats: w then v[0 .. dim). The numeric parameters
// are dense blocks: numeric_w (num_numeric) and numeric_v (num_numeric x dim,
// row-major).
//
// Explanation seam: linear() is each field's exact share of the first-order
// part, and with FmInteraction::field_sum() the embeddings give each field's
// exact share of the interaction.
//
// Sequence fields are mean-pooled here (lr/fm/deepfm). Attention models
// (DIN/BST) pool the sequences they attend over against a query instead:
// Create's `attended` fields are left zero (linear and embeddings) for the
// model to fill, and Backward leaves their rows' gradients to the model.
//
// Thread-compatible: keeps the outputs of the last Forward (scratch buffers
// reused across batches).
#ifndef TESSERA_MODELS_LAYERS_FIELD_EMBEDDING_H_
#define TESSERA_MODELS_LAYERS_FIELD_EMBEDDING_H_

#include <cstdint>
#include <span>
#include <utility>
#include <vector>

#include "common/status.h"
#include "models/batch.h"
#include "models/layers/embedding_bag.h"
#include "models/schema.h"

namespace tessera::models::layers {

class FieldEmbedding {
 public:
  enum class Sequences : uint8_t { kMeanPool };

  // InvalidArgument if the schema has no fields or is inconsistent (a table
  // or numeric index out of range, a numeric column used twice or not at
  // all), or if an attended field is not a sequence field. The schema is
  // only read during the call.
  static StatusOr<FieldEmbedding> Create(const Schema& schema, uint32_t dim,
                                         std::span<const int> attended);
  static StatusOr<FieldEmbedding> Create(const Schema& schema, uint32_t dim,
                                         Sequences /*mean_pool*/) {
    return Create(schema, dim, std::span<const int>());
  }

  int num_fields() const { return static_cast<int>(pooling_.size()); }
  int dim() const { return dim_; }
  int num_numeric() const { return static_cast<int>(numeric_slots_.size()); }
  uint32_t row_dim() const { return 1 + static_cast<uint32_t>(dim_); }

  // REQUIRES: every table's values are keys.size() x row_dim(); every
  // FieldBatch names a categorical or sequence field and its occurrences are
  // in range; batch.numeric is size x num_numeric() (any shape if there are
  // none); numeric_w.size() == num_numeric(); numeric_v.size() ==
  // num_numeric() * dim().
  void Forward(const Batch& batch, std::span<const float> numeric_w,
               std::span<const float> numeric_v);

  const RowMatrix& linear() const { return linear_; }
  const RowMatrix& embeddings() const { return embeddings_; }

  // Backward of the last Forward (same batch and parameters), given that the
  // linear terms enter the logit as a plain sum (so d(loss)/d(linear(i, f)) =
  // dlogits[i]) and d(loss)/d(embeddings()) = *dembeddings (null iff dim is
  // 0). Overwrites every table's grads (resized to keys.size() x row_dim();
  // rows summed over their occurrences) and the numeric gradients.
  void Backward(Batch* batch, std::span<const float> dlogits, const RowMatrix* dembeddings,
                std::span<float> numeric_w_grad, std::span<float> numeric_v_grad) const;

 private:
  struct NumericSlot {
    int field;   // slot
    int column;  // in Batch::numeric and the numeric blocks
  };
  FieldEmbedding(int dim, std::vector<Pooling> pooling, std::vector<bool> pooled,
                 std::vector<NumericSlot> numeric_slots)
      : dim_(dim),
        pooling_(std::move(pooling)),
        pooled_(std::move(pooled)),
        numeric_slots_(std::move(numeric_slots)) {}

  int dim_;
  std::vector<Pooling> pooling_;  // per field: categorical kSum, sequence kMean
  std::vector<bool> pooled_;  // filled from FieldBatches (false: numeric, attended)
  std::vector<NumericSlot> numeric_slots_;
  RowMatrix linear_;
  RowMatrix embeddings_;
  std::vector<bool> filled_;  // scratch of Forward
};

}  // namespace tessera::models::layers

#endif  // TESSERA_MODELS_LAYERS_FIELD_EMBEDDING_H_
