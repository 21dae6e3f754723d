// A saved model (models/saved_model.h, the format `tessera train` writes to
// <output_dir>/model) loaded for serving: it scores JSON instances
// (serving/instance_encoder.h) with the batch builder, FillBatch and
// Model::Predict / Explain that `tessera eval` uses, so serving's
// predictions equal eval's for the same model.
//
// Version: a published version's number (models/model_versions.h); for a
// plain saved model (version 0), its manifest's created_unix_s. As a decimal
// string.
//
// Thread-safe: Score may run on many threads at once. The parameters are
// immutable while the object is shared; ApplyDelta, which changes them, is
// for the owner of an unpublished copy (serving/model_follower.h). Each
// Score call borrows a Model (which keeps only scratch buffers, nothing of
// the parameters or version) from a pool that grows to the number of
// concurrent calls; the pool survives ApplyDelta.
//
// Example:
//   TESSERA_ASSIGN_OR_RETURN(auto served, ServedModel::Load("runs/ctr/model", ""));
//   ScoreResult r;
//   TESSERA_RETURN_IF_ERROR(served->Score(instances, "instances", /*explain=*/false, &r));
#ifndef TESSERA_SERVING_SERVED_MODEL_H_
#define TESSERA_SERVING_SERVED_MODEL_H_

#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "models/explanation_json.h"

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "common/status.h"
#include "models/model.h"
#include "models/model_versions.h"
#include "models/saved_model.h"
#include "serving/instance_encoder.h"
#include "serving/item_catalog.h"

namespace tessera::serving {

struct ScoreResult {
  std::vector<float> predictions;  // click probabilities, one per instance
  // With explain: one object per instance, {"logit", "bias", "fields":
  // {name: contribution}, "attention": {sequence field: [{"item": token,
  // "weight": w}, ...]}} (the keys of models/eval_runner.h ExplanationJson
  // that describe the example).
  nlohmann::ordered_json explanations = nlohmann::ordered_json::array();
};

using models::JsonFloat;  // (models/explanation_json.h)

class ServedModel {
 public:
  // Loads the model in `model_dir` without optimizer state and, if
  // `catalog_path` is not empty, the item catalogue. The model's errors
  // (NotFound, DataLoss, ...) and the catalogue's.
  static StatusOr<std::unique_ptr<ServedModel>> Load(const std::string& model_dir,
                                                     const std::string& catalog_path);
  // The same for a model trained with the id salt of `id_hasher`
  // (FailedPrecondition, before anything else is loaded, if the model's
  // manifest has another salt fingerprint: models::CheckIdSalt); instances
  // and catalogue rows are hashed with it.
  static StatusOr<std::unique_ptr<ServedModel>> Load(const std::string& model_dir,
                                                     const std::string& catalog_path,
                                                     const models::FeatureHasher& id_hasher);
  // Serves `saved` with `catalog` (may be null; shared, immutable). Its
  // schema's hasher is the one instances are hashed with (models::UseIdSalt).
  // InvalidArgument for a model type this build cannot construct.
  static StatusOr<std::unique_ptr<ServedModel>> Create(
      models::SavedModel saved, std::shared_ptr<const ItemCatalog> catalog);
  // Loads the catalogue at `path` for `schema` (its key field, CatalogKeyField).
  static StatusOr<std::shared_ptr<const ItemCatalog>> LoadCatalog(const std::string& path,
                                                                  const models::Schema& schema);

  // A deep copy of the parameters sharing the catalogue: O(model).
  std::unique_ptr<ServedModel> Clone() const;
  // Applies `delta` (models::ApplyReadDelta: O(delta)) and takes its version.
  // REQUIRES: no Score call runs or starts meanwhile (the object is not
  // shared); `delta` was read for this model's version.
  void ApplyDelta(const models::ModelDelta& delta);

  const std::string& version() const { return version_; }
  // The published version number (0 for a plain saved model).
  uint64_t version_number() const { return saved_.manifest.version; }
  const models::SavedModel& saved() const { return saved_; }
  const models::Schema& schema() const { return saved_.schema; }
  // The field a bare recommend candidate names ("" if the schema has none).
  const std::string& item_field() const { return item_field_; }
  // The catalogue, or null without --catalog.
  const ItemCatalog* catalog() const { return catalog_.get(); }
  const std::shared_ptr<const ItemCatalog>& shared_catalog() const { return catalog_; }

  // Scores `instances` in one batch. Errors name the instance as
  // "<list>[i]": InvalidArgument for a bad instance, Unimplemented when
  // explaining with a model that cannot explain itself.
  Status Score(std::span<const nlohmann::json> instances, std::string_view list, bool explain,
               ScoreResult* out) const;

 private:
  ServedModel(models::SavedModel saved, std::shared_ptr<const ItemCatalog> catalog);

  // A Model from the pool (a new one if it is empty); Release returns it.
  StatusOr<std::unique_ptr<models::Model>> Acquire() const;
  void Release(std::unique_ptr<models::Model> model) const;

  // Changed only by ApplyDelta (never while shared); the schema never.
  models::SavedModel saved_;
  std::string version_;
  const InstanceEncoder encoder_;  // borrows saved_.schema
  std::string item_field_;
  const std::shared_ptr<const ItemCatalog> catalog_;

  mutable absl::Mutex mu_;
  // protected by mu_
  mutable std::vector<std::unique_ptr<models::Model>> pool_ ABSL_GUARDED_BY(mu_);
};

}  // namespace tessera::serving

#endif  // TESSERA_SERVING_SERVED_MODEL_H_
