// A mini-batch as the models see it. The batch builder (models/
// batch_builder.h) fills labels, numeric inputs, field occurrences and the
// unique keys of each table; the worker pulls `values` of every table from
// the parameter servers; the model's backward writes `grads`, which the
// worker pushes. Each unique key appears once per table per batch, so it is
// pulled once and pushed once with its gradient summed over the batch.
#ifndef TESSERA_MODELS_BATCH_H_
#define TESSERA_MODELS_BATCH_H_

#include <cstdint>
#include <string>
#include <vector>

#include <Eigen/Core>

#include "common/types.h"

namespace tessera::models {

using RowMatrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// The rows of one embedding table touched by the batch.
struct TableBatch {
  int table = 0;                // index into Schema::tables()
  std::vector<Key> keys;        // unique keys, in first-seen order
  RowMatrix values;             // keys.size() x row_dim, pulled by the worker
  RowMatrix grads;              // keys.size() x row_dim, written by backward
};

// The occurrences of one categorical or sequence field. For example i,
// rows[offsets[i] .. offsets[i+1]) are indices into tables[table_batch].keys.
// Categorical: 0 rows (missing) or 1. Sequence: up to max_len rows, oldest
// first, the most recent kept when the history is longer.
struct FieldBatch {
  int field = 0;        // index into Schema::fields()
  int table_batch = 0;  // index into Batch::tables
  std::vector<uint32_t> offsets;  // size + 1 entries
  std::vector<uint32_t> rows;
};

struct Batch {
  int size = 0;
  std::vector<float> labels;       // 0 or 1
  RowMatrix numeric;               // size x num_numeric fields (after transform; missing = 0)
  std::vector<FieldBatch> fields;  // categorical and sequence fields, schema order
  std::vector<TableBatch> tables;  // tables used by those fields
  std::vector<uint64_t> groups;    // per example: hash of the group field (GAUC), or empty
  // Where the batch came from, for resumable positions (worker/data_feed.h):
  // the scheduler's chunk id and the byte offset just past the batch's last
  // line in that chunk's file (== the chunk's end once it is consumed).
  struct Source {
    uint64_t chunk_id = 0;
    uint64_t end_offset = 0;
  } source;
};

}  // namespace tessera::models

#endif  // TESSERA_MODELS_BATCH_H_
