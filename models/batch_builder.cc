#include "models/batch_builder.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"

namespace tessera::models {

StatusOr<std::unique_ptr<BatchBuilder>> BatchBuilder::Create(const Schema* schema,
                                                             const BatchBuilderOptions& options) {
  int group_field = -1;
  if (!options.group_field.empty()) {
    group_field = schema->FieldIndex(options.group_field);
    if (group_field < 0) {
      return InvalidArgumentError(
          absl::StrCat("group field '", options.group_field, "' is not in the schema"));
    }
    if (schema->fields()[group_field].type != FieldType::kCategorical) {
      return InvalidArgumentError(
          absl::StrCat("group field '", options.group_field, "' must be categorical"));
    }
  }
  return std::unique_ptr<BatchBuilder>(new BatchBuilder(schema, group_field));
}

BatchBuilder::BatchBuilder(const Schema* schema, int group_field)
    : schema_(schema), group_field_(group_field), rows_(schema->tables().size()) {
  for (size_t f = 0; f < schema->fields().size(); ++f) {
    if (schema->fields()[f].type != FieldType::kNumeric) sparse_fields_.push_back(static_cast<int>(f));
  }
}

void BatchBuilder::Start(Batch* batch) {
  // Finish() leaves the maps empty; a batch abandoned without Finish is dropped here.
  for (auto& rows : rows_) {
    if (!rows.empty()) rows.clear();
  }
  batch_ = batch;
  size_ = 0;
  numeric_.clear();
  batch->size = 0;
  batch->labels.clear();
  batch->groups.clear();
  batch->fields.resize(sparse_fields_.size());
  for (size_t i = 0; i < sparse_fields_.size(); ++i) {
    FieldBatch& fb = batch->fields[i];
    fb.field = sparse_fields_[i];
    fb.table_batch = schema_->fields()[sparse_fields_[i]].table_index;
    fb.offsets.assign(1, 0);
    fb.rows.clear();
  }
  batch->tables.resize(schema_->tables().size());
  for (size_t t = 0; t < batch->tables.size(); ++t) {
    batch->tables[t].table = static_cast<int>(t);
    batch->tables[t].keys.clear();
  }
}

uint32_t BatchBuilder::RowOf(int table, Key key) {
  std::vector<Key>& keys = batch_->tables[table].keys;
  const auto [it, inserted] = rows_[table].try_emplace(key, static_cast<uint32_t>(keys.size()));
  if (inserted) keys.push_back(key);
  return it->second;
}

void BatchBuilder::Add(const Example& example) {
  batch_->labels.push_back(example.label);
  numeric_.insert(numeric_.end(), example.numeric.begin(), example.numeric.end());
  for (size_t i = 0; i < sparse_fields_.size(); ++i) {
    const Field& field = schema_->fields()[sparse_fields_[i]];
    std::span<const Key> keys = example.FieldKeys(sparse_fields_[i]);
    const size_t limit = field.type == FieldType::kSequence ? field.max_len : 1;
    if (keys.size() > limit) keys = keys.subspan(keys.size() - limit);  // most recent
    FieldBatch& fb = batch_->fields[i];
    for (Key key : keys) fb.rows.push_back(RowOf(field.table_index, key));
    fb.offsets.push_back(static_cast<uint32_t>(fb.rows.size()));
  }
  if (group_field_ >= 0) {
    std::span<const Key> group = example.FieldKeys(group_field_);
    batch_->groups.push_back(group.empty() ? kNoGroup : group[0]);
  }
  ++size_;
}

void BatchBuilder::Finish() {
  const int cols = schema_->num_numeric();
  batch_->size = size_;
  // resize() keeps the allocation when the shape's element count is unchanged.
  batch_->numeric.resize(size_, cols);
  std::copy(numeric_.begin(), numeric_.end(), batch_->numeric.data());
  // Forget this batch's keys by erasing them: absl's clear() frees large
  // backing arrays, erase() keeps the capacity for the next batch.
  for (size_t t = 0; t < rows_.size(); ++t) {
    for (Key key : batch_->tables[t].keys) rows_[t].erase(key);
  }
  batch_ = nullptr;
}

}  // namespace tessera::models
