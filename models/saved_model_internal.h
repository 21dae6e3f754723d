// Internals shared by saved_model.cc (full snapshots) and model_versions.cc
// (deltas): opening and checking row files, loading dense tables, checking a
// manifest's tables against the model's plan. Not part of the API.
#ifndef TESSERA_MODELS_SAVED_MODEL_INTERNAL_H_
#define TESSERA_MODELS_SAVED_MODEL_INTERNAL_H_

#include <memory>
#include <string>

#include "common/row_file.h"
#include "common/status.h"
#include "models/model.h"
#include "models/saved_model.h"
#include "models/schema.h"

namespace tessera::models::saved_model_internal {

// The manifest's tables must be the plan of (schema, model): sparse table t
// is schema table t with row_dim floats, then one dense table per block.
// InvalidArgument naming `source` otherwise.
Status CheckPlan(const ModelManifest& m, const Schema& schema, const Model& model,
                 const std::string& source);

// Opens row file `file` (relative to `dir`) of table `t` and checks its
// header against the manifest: table id, kind, shape; is_delta must equal
// `delta` for sparse files (dense files are never deltas); `with_state`
// needs state in the file (FailedPrecondition).
StatusOr<std::unique_ptr<RowFileReader>> OpenPart(const std::string& dir, const SavedTable& t,
                                                  const std::string& file, bool with_state,
                                                  bool delta);

// Loads the whole dense table `t` from its files in `dir` (they must tile
// [0, size)); with state also its planar state and ranges.
Status LoadDense(const std::string& dir, const SavedTable& t, bool with_state, DenseParams* out);

}  // namespace tessera::models::saved_model_internal

#endif  // TESSERA_MODELS_SAVED_MODEL_INTERNAL_H_
