// Accumulates parsed Examples into a Batch (models/batch.h): labels, the
// numeric matrix, one FieldBatch per categorical or sequence field (schema
// order) and one TableBatch per schema table (Batch::tables[t].table == t),
// holding each key the batch touches once, in first-seen order. Sequences
// keep their most recent max_len keys. With a group field, Batch::groups
// holds each example's key of that field (kNoGroup when it is missing), for
// GAUC.
//
// Reuse: Start() clears the Batch but keeps the capacity of its vectors and
// of the builder's dedup maps, so steady-state batches do not allocate.
// TableBatch::values / grads are left alone for the worker to resize.
//
// Thread-compatible: one builder per reading thread.
//
// Example:
//   ASSIGN_OR_RETURN(auto builder, BatchBuilder::Create(&schema, {.group_field = "user_id"}));
//   builder->Start(&batch);
//   while (builder->size() < 512 && reader.Next(&example)) builder->Add(example);
//   builder->Finish();  // batch is ready
#ifndef TESSERA_MODELS_BATCH_BUILDER_H_
#define TESSERA_MODELS_BATCH_BUILDER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "common/status.h"
#include "models/batch.h"
#include "models/metrics.h"  // kNoGroup
#include "models/schema.h"
#include "models/tsv_parser.h"

namespace tessera::models {

struct BatchBuilderOptions {
  // A categorical field whose key groups examples for GAUC (e.g. "user_id");
  // empty = Batch::groups stays empty.
  std::string group_field;
};

class BatchBuilder {
 public:
  // `schema` is borrowed and must remain live. InvalidArgument if the group
  // field is unknown or not categorical.
  static StatusOr<std::unique_ptr<BatchBuilder>> Create(const Schema* schema,
                                                        const BatchBuilderOptions& options);

  // Starts a new batch in *batch (borrowed until Finish), clearing it.
  void Start(Batch* batch);
  // Appends one example. REQUIRES: Start was called; `example` was parsed
  // with this schema.
  void Add(const Example& example);
  // Completes the batch (size, the numeric matrix) and releases it: the
  // caller may move or destroy it before the next Start.
  void Finish();

  int size() const { return size_; }

 private:
  BatchBuilder(const Schema* schema, int group_field);
  uint32_t RowOf(int table, Key key);

  const Schema* const schema_;
  const int group_field_;           // -1: none
  std::vector<int> sparse_fields_;  // schema indexes of categorical/sequence fields
  // Per table: key -> row in Batch::tables[t].keys.
  std::vector<absl::flat_hash_map<Key, uint32_t>> rows_;
  std::vector<float> numeric_;  // row-major staging for Batch::numeric
  Batch* batch_ = nullptr;
  int size_ = 0;
};

}  // namespace tessera::models

#endif  // TESSERA_MODELS_BATCH_BUILDER_H_
