#include "models/layers/field_embedding.h"

#include <algorithm>
#include <cassert>
#include <string>
#include <utility>

namespace tessera::models::layers {

StatusOr<FieldEmbedding> FieldEmbedding::Create(const Schema& schema, uint32_t dim,
                                                std::span<const int> attended) {
  const std::vector<Field>& fields = schema.fields();
  if (fields.empty()) return InvalidArgumentError("schema.fields: a model needs at least one field");
  const int num_tables = static_cast<int>(schema.tables().size());
  std::vector<Pooling> pooling(fields.size(), Pooling::kSum);
  std::vector<bool> pooled(fields.size(), false);
  std::vector<NumericSlot> numeric;
  std::vector<bool> column_used(static_cast<size_t>(std::max(schema.num_numeric(), 0)), false);
  for (size_t f = 0; f < fields.size(); ++f) {
    const Field& field = fields[f];
    const std::string where = "schema.fields[" + std::to_string(f) + "] (" + field.name + ")";
    if (field.type == FieldType::kNumeric) {
      const int column = field.numeric_index;
      if (column < 0 || column >= schema.num_numeric() || column_used[column]) {
        return InvalidArgumentError(where + ": numeric_index " + std::to_string(column) +
                                    " is out of range or used twice");
      }
      column_used[column] = true;
      numeric.push_back({.field = static_cast<int>(f), .column = column});
      continue;
    }
    if (field.table_index < 0 || field.table_index >= num_tables) {
      return InvalidArgumentError(where + ": table_index " + std::to_string(field.table_index) +
                                  " is out of range");
    }
    const bool sequence = field.type == FieldType::kSequence;
    pooling[f] = sequence ? Pooling::kMean : Pooling::kSum;
    pooled[f] = true;
  }
  for (int f : attended) {
    if (f < 0 || f >= static_cast<int>(fields.size()) ||
        fields[f].type != FieldType::kSequence) {
      return InvalidArgumentError("field " + std::to_string(f) +
                                  " cannot be attended: not a sequence field");
    }
    pooled[f] = false;
  }
  if (static_cast<int>(numeric.size()) != schema.num_numeric()) {
    return InvalidArgumentError("schema: num_numeric is " + std::to_string(schema.num_numeric()) +
                                " but " + std::to_string(numeric.size()) +
                                " numeric fields are declared");
  }
  // Numeric slots ordered by column, so parameter j belongs to column j.
  std::sort(numeric.begin(), numeric.end(),
            [](const NumericSlot& a, const NumericSlot& b) { return a.column < b.column; });
  return FieldEmbedding(static_cast<int>(dim), std::move(pooling), std::move(pooled),
                        std::move(numeric));
}

void FieldEmbedding::Forward(const Batch& batch, std::span<const float> numeric_w,
                             std::span<const float> numeric_v) {
  const int n = batch.size;
  const int k = dim_;
  assert(static_cast<int>(numeric_w.size()) == num_numeric());
  assert(static_cast<int>(numeric_v.size()) == num_numeric() * k);
  linear_.resize(n, num_fields());
  embeddings_.resize(n, static_cast<Eigen::Index>(num_fields()) * k);
  filled_.assign(num_fields(), false);
  for (const FieldBatch& fb : batch.fields) {
    assert(fb.field >= 0 && fb.field < num_fields());
    if (!pooled_[fb.field]) continue;
    const RowMatrix& values = batch.tables[fb.table_batch].values;
    assert(values.cols() == static_cast<Eigen::Index>(row_dim()));
    const Pooling pooling = pooling_[fb.field];
    EmbeddingBagForward(fb, values, 0, pooling, linear_.middleCols(fb.field, 1));
    if (k > 0) {
      EmbeddingBagForward(fb, values, 1, pooling, embeddings_.middleCols(fb.field * k, k));
    }
    filled_[fb.field] = true;
  }
  for (const NumericSlot& slot : numeric_slots_) {
    assert(batch.numeric.rows() == n && batch.numeric.cols() == num_numeric());
    const auto x = batch.numeric.col(slot.column);
    linear_.col(slot.field) = x * numeric_w[slot.column];
    if (k > 0) {
      Eigen::Map<const Eigen::RowVectorXf> v(numeric_v.data() + slot.column * k, k);
      embeddings_.middleCols(slot.field * k, k).noalias() = x * v;
    }
    filled_[slot.field] = true;
  }
  for (int f = 0; f < num_fields(); ++f) {
    if (filled_[f]) continue;  // absent from the batch (or skipped): zeros
    linear_.col(f).setZero();
    if (k > 0) embeddings_.middleCols(f * k, k).setZero();
  }
}

void FieldEmbedding::Backward(Batch* batch, std::span<const float> dlogits,
                              const RowMatrix* dembeddings, std::span<float> numeric_w_grad,
                              std::span<float> numeric_v_grad) const {
  const int n = batch->size;
  const int k = dim_;
  assert(static_cast<int>(dlogits.size()) == n);
  assert((dembeddings != nullptr) == (k > 0));
  assert(static_cast<int>(numeric_w_grad.size()) == num_numeric());
  assert(static_cast<int>(numeric_v_grad.size()) == num_numeric() * k);
  for (TableBatch& table : batch->tables) {
    table.grads.resize(static_cast<Eigen::Index>(table.keys.size()), row_dim());
    table.grads.setZero();
  }
  Eigen::Map<const RowMatrix> dlinear(dlogits.data(), n, 1);
  for (const FieldBatch& fb : batch->fields) {
    if (!pooled_[fb.field]) continue;
    RowMatrix* grads = &batch->tables[fb.table_batch].grads;
    const Pooling pooling = pooling_[fb.field];
    EmbeddingBagBackward(fb, dlinear, 0, pooling, grads);
    if (k > 0) {
      EmbeddingBagBackward(fb, dembeddings->middleCols(fb.field * k, k), 1, pooling, grads);
    }
  }
  Eigen::Map<const Eigen::VectorXf> dlogit_vector(dlogits.data(), n);
  for (const NumericSlot& slot : numeric_slots_) {
    const auto x = batch->numeric.col(slot.column);
    numeric_w_grad[slot.column] = x.dot(dlogit_vector);
    if (k > 0) {
      Eigen::Map<Eigen::RowVectorXf> dv(numeric_v_grad.data() + slot.column * k, k);
      dv.noalias() = x.transpose() * dembeddings->middleCols(slot.field * k, k);
    }
  }
}

}  // namespace tessera::models::layers
