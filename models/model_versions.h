// Published model versions (continuous training -> serving), in the style of
// TensorFlow Serving's version directories. A training job publishes into a
// publish directory DIR:
//
//   DIR/<version>/manifest.json             written last, atomically
//   DIR/<version>/<table>/part-<rank>.rows  (models/saved_model.h)
//
// <version> is a positive decimal integer without leading zeros. A version
// is complete iff its directory name is such a number and manifest.json
// exists in it; anything else in DIR (".deleting-5", "7.tmp", files,
// directories still being written) is ignored. A version is a full snapshot
// or a delta on top of the version right before it (saved_model.h: "kind",
// "base_version"); its chain is [full, delta, ..., version], each delta's
// base the previous entry.
//
// Removal (RemoveOldVersions) renames DIR/<v> to DIR/.deleting-<v> before
// deleting it, so a version stops being complete atomically; a reader that
// was loading it gets NotFound or DataLoss and may retry with a newer one.
//
// Thread safety: the functions are thread-safe (they share nothing);
// several readers may follow DIR while one writer publishes and removes.
//
// Example:
//   TESSERA_ASSIGN_OR_RETURN(auto versions, ListVersions(dir));
//   if (versions.empty()) return NotFoundError("nothing published yet");
//   TESSERA_ASSIGN_OR_RETURN(SavedModel m,
//       LoadModelVersion(dir, versions.back().version, /*with_state=*/false));
//   ... later, when version v + 1 (a delta on v) appears:
//   TESSERA_RETURN_IF_ERROR(ApplyDelta(VersionDir(dir, v + 1), false, &m));
#ifndef TESSERA_MODELS_MODEL_VERSIONS_H_
#define TESSERA_MODELS_MODEL_VERSIONS_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "common/types.h"
#include "models/saved_model.h"

namespace tessera::models {

struct VersionInfo {
  uint64_t version = 0;
  bool full = false;
  uint64_t base_version = 0;  // deltas: the version it applies to; full: 0
  friend bool operator==(const VersionInfo&, const VersionInfo&) = default;
};

// "<publish_dir>/<version>".
std::string VersionDir(const std::string& publish_dir, uint64_t version);

// True (and *version set) if `name` names a version: 1 to 20 digits, no
// leading zero, fitting uint64.
bool ParseVersionName(std::string_view name, uint64_t* version);

// The complete versions of `publish_dir`, ascending, from directory names
// and the presence of manifest.json only (no manifest is read: cheap enough
// to poll). NotFound if the directory does not exist.
StatusOr<std::vector<uint64_t>> ListVersionNumbers(const std::string& publish_dir);

// The kind and base of version `version` (its manifest). NotFound if it is
// not complete (never published, or removed); the manifest's errors; DataLoss
// if the manifest names another version than its directory.
StatusOr<VersionInfo> ReadVersionInfo(const std::string& publish_dir, uint64_t version);

// The complete versions, ascending, with their kinds (every manifest read).
// A version removed while listing is left out. NotFound if `publish_dir`
// does not exist; a manifest's error otherwise.
StatusOr<std::vector<VersionInfo>> ListVersions(const std::string& publish_dir);

// The chain that loads `version`: [full, delta..., version], following
// base_version. NotFound naming the missing version when a link is missing;
// DataLoss when a manifest disagrees with its directory; a manifest's error.
StatusOr<std::vector<VersionInfo>> ResolveChain(const std::string& publish_dir, uint64_t version);

// A delta read and verified in memory, ready to apply (ApplyReadDelta):
// reading it can fail, applying it cannot, so a model is never left half
// updated. Thread-compatible; immutable once read.
struct ModelDelta {
  struct Sparse {
    std::vector<Key> deleted;                           // tombstones
    std::vector<Key> keys;                              // changed rows, in file order
    uint32_t state_floats = 0;                          // per row in `rows` (0 without state)
    std::vector<float> rows;                            // keys.size() x (dim + state_floats)
    std::vector<uint32_t> update_counts, last_updates;  // with state only
  };
  ModelManifest manifest;  // the delta's
  bool with_state = false;
  std::vector<Sparse> sparse;      // per sparse table, as SavedModel::sparse
  std::vector<DenseParams> dense;  // complete dense tables
};

// Reads the delta in `delta_dir` (a version directory) for applying to
// `base`, which must be the version the delta applies to. Errors, naming the
// directory or file: NotFound (incomplete), FailedPrecondition (not a delta,
// base.manifest.version is not its base_version, another model, with_state
// differs from base.with_state or the delta has no state to give),
// InvalidArgument / DataLoss (bad or corrupt files, a key twice).
StatusOr<ModelDelta> ReadDelta(const std::string& delta_dir, bool with_state,
                               const SavedModel& base);

// Applies a delta read for a model at its base version (or a copy of that
// model): per sparse table the tombstones are erased, then the rows set;
// dense tables are replaced; the manifest becomes the delta's. O(size of the
// delta). REQUIRES: `delta` was read by ReadDelta against a model equal to
// *model (same version, same with_state).
void ApplyReadDelta(const ModelDelta& delta, SavedModel* model);

// ReadDelta then ApplyReadDelta. On error *model is unchanged.
Status ApplyDelta(const std::string& delta_dir, bool with_state, SavedModel* model);

// Loads version `version` of `publish_dir`: its chain's full snapshot, then
// each delta applied in order. `with_state` also keeps optimizer state and
// counters (every link must have them). Errors of ResolveChain,
// LoadSavedModel and ReadDelta.
StatusOr<SavedModel> LoadModelVersion(const std::string& publish_dir, uint64_t version,
                                      bool with_state);

// Keeps the newest `keep` complete versions and every version their chains
// need (the full snapshot each kept delta builds on, and the versions
// between); removes the other complete versions, each first renamed to
// "<publish_dir>/.deleting-<v>" and then deleted recursively, and also
// deletes ".deleting-*" directories left by an interrupted earlier call.
// Incomplete version directories are never touched (they may be being
// written). Returns the removed versions, ascending. keep == 0 keeps all.
// A chain with a missing link keeps what it reaches. Errors: NotFound (no
// directory), a needed manifest's error (then nothing is removed),
// Unavailable for a rename or removal that fails (the versions removed
// before it stay removed).
// REQUIRES: one remover per publish directory at a time.
StatusOr<std::vector<uint64_t>> RemoveOldVersions(const std::string& publish_dir, uint64_t keep);

}  // namespace tessera::models

#endif  // TESSERA_MODELS_MODEL_VERSIONS_H_
