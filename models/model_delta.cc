// Reading and applying deltas, and loading a version through its chain
// (models/model_versions.h).
#include <filesystem>
#include <memory>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "common/row_file.h"
#include "models/model_versions.h"
#include "models/saved_model_internal.h"

namespace tessera::models {
namespace {

using saved_model_internal::OpenPart;

std::string ManifestPath(const std::string& dir) {
  return (std::filesystem::path(dir) / kManifestFileName).string();
}

// The checks of ReadDelta that need only the manifests.
Status CheckDeltaManifest(const std::string& dir, const ModelManifest& m, bool with_state,
                          const SavedModel& base) {
  const std::string source = ManifestPath(dir);
  if (m.kind != SnapshotKind::kDelta) {
    return FailedPreconditionError(
        absl::StrCat(source, ": version ", m.version, " is a full snapshot, not a delta"));
  }
  if (m.base_version != base.manifest.version) {
    return FailedPreconditionError(
        absl::StrCat(source, ": the delta of version ", m.version, " applies to version ",
                     m.base_version, ", the model is at version ", base.manifest.version));
  }
  if (!SameModel(m, base.manifest)) {
    return FailedPreconditionError(
        absl::StrCat(source, ": describes another model than its base version ", m.base_version,
                     " (schema, id salt, model or tables differ)"));
  }
  if (with_state != base.with_state) {
    return FailedPreconditionError(
        absl::StrCat(source, ": reading ", with_state ? "with" : "without",
                     " state for a model loaded ", base.with_state ? "with" : "without", " it"));
  }
  if (with_state && !m.has_optimizer_state) {
    return FailedPreconditionError(source + ": saved without optimizer state");
  }
  return OkStatus();
}

// Reads the changed rows and tombstones of sparse table `t` (every file
// verified to its checksum before returning).
Status ReadSparseDelta(const std::string& dir, const SavedTable& t, bool with_state,
                       const SparseParams& base, ModelDelta::Sparse* out) {
  absl::flat_hash_set<Key> seen;
  SparseRecord row;
  for (const std::string& file : t.files) {
    TESSERA_ASSIGN_OR_RETURN(auto reader, OpenPart(dir, t, file, with_state, /*delta=*/true));
    const uint32_t state_floats = with_state ? reader->info().state_floats : 0;
    if (out->keys.empty() && out->deleted.empty()) out->state_floats = state_floats;
    const bool base_fits = !with_state || base.num_rows() == 0 || base.state_floats == state_floats;
    if (state_floats != out->state_floats || !base_fits) {
      return DataLossError(absl::StrCat(reader->path(), ": ", state_floats,
                                        " state floats per row, the model's table '", t.config.name,
                                        "' has ", base.state_floats));
    }
    while (true) {
      TESSERA_ASSIGN_OR_RETURN(bool more, reader->NextRow(&row));
      if (!more) break;
      if (!seen.insert(row.key).second) {
        return DataLossError(absl::StrCat(reader->path(), ": key ", row.key,
                                          " appears twice in the delta of table '", t.config.name,
                                          "'"));
      }
      out->keys.push_back(row.key);
      out->rows.insert(out->rows.end(), row.value.begin(), row.value.end());
      if (with_state) {
        out->rows.insert(out->rows.end(), row.state.begin(), row.state.end());
        out->update_counts.push_back(row.update_count);
        out->last_updates.push_back(row.last_update_unix_s);
      }
    }
    Key key = 0;
    while (true) {
      TESSERA_ASSIGN_OR_RETURN(bool more, reader->NextDeletedKey(&key));
      if (!more) break;
      out->deleted.push_back(key);
    }
    TESSERA_RETURN_IF_ERROR(reader->Finish());
  }
  return OkStatus();
}

void ApplySparse(const ModelDelta::Sparse& delta, SparseParams* params) {
  for (Key key : delta.deleted) params->Erase(key);
  if (params->num_rows() == 0) params->state_floats = delta.state_floats;
  const size_t dim = params->config.dim;
  const size_t stride = dim + delta.state_floats;
  for (size_t i = 0; i < delta.keys.size(); ++i) {
    const float* row = delta.rows.data() + i * stride;
    const bool counters = !delta.update_counts.empty();
    params->Upsert(delta.keys[i], {row, dim}, {row + dim, delta.state_floats},
                   counters ? delta.update_counts[i] : 0, counters ? delta.last_updates[i] : 0);
  }
}

}  // namespace

StatusOr<ModelDelta> ReadDelta(const std::string& delta_dir, bool with_state,
                               const SavedModel& base) {
  ModelDelta delta;
  delta.with_state = with_state;
  TESSERA_ASSIGN_OR_RETURN(delta.manifest, ReadManifest(delta_dir));
  TESSERA_RETURN_IF_ERROR(CheckDeltaManifest(delta_dir, delta.manifest, with_state, base));
  // SameModel: the tables are the base's, so the plan was checked with it.
  const size_t num_sparse = base.sparse.size();
  delta.sparse.resize(num_sparse);
  delta.dense.resize(base.dense.size());
  for (size_t i = 0; i < delta.manifest.tables.size(); ++i) {
    const SavedTable& t = delta.manifest.tables[i];
    TESSERA_RETURN_IF_ERROR(
        i < num_sparse ? ReadSparseDelta(delta_dir, t, with_state, base.sparse[i], &delta.sparse[i])
                       : saved_model_internal::LoadDense(delta_dir, t, with_state,
                                                         &delta.dense[i - num_sparse]));
  }
  return delta;
}

void ApplyReadDelta(const ModelDelta& delta, SavedModel* model) {
  for (size_t i = 0; i < delta.sparse.size(); ++i) ApplySparse(delta.sparse[i], &model->sparse[i]);
  model->dense = delta.dense;
  model->manifest = delta.manifest;
}

Status ApplyDelta(const std::string& delta_dir, bool with_state, SavedModel* model) {
  TESSERA_ASSIGN_OR_RETURN(ModelDelta delta, ReadDelta(delta_dir, with_state, *model));
  ApplyReadDelta(delta, model);
  return OkStatus();
}

StatusOr<SavedModel> LoadModelVersion(const std::string& publish_dir, uint64_t version,
                                      bool with_state) {
  TESSERA_ASSIGN_OR_RETURN(std::vector<VersionInfo> chain, ResolveChain(publish_dir, version));
  const std::string full_dir = VersionDir(publish_dir, chain.front().version);
  TESSERA_ASSIGN_OR_RETURN(SavedModel model, LoadSavedModel(full_dir, with_state));
  for (size_t i = 1; i < chain.size(); ++i) {
    TESSERA_RETURN_IF_ERROR(
        ApplyDelta(VersionDir(publish_dir, chain[i].version), with_state, &model));
  }
  return model;
}

}  // namespace tessera::models
