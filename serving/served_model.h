// A saved model (models/saved_model.h, the format `tessera train` writes to
// <output_dir>/model) loaded for serving: it scores JSON instances
// (serving/instance_encoder.h) with the batch builder, FillBatch and
// Model::Predict / Explain that `tessera eval` uses, so serving's
// predictions equal eval's for the same model.
//
// Version: until versioned deltas exist (continuous-training issue), a
// model's version is its manifest's created_unix_s, as a decimal string.
//
// Thread-safe: Score may run on many threads at once. The parameters are
// immutable; each call borrows a Model (which keeps scratch buffers) from a
// pool that grows to the number of concurrent calls.
//
// Example:
//   TESSERA_ASSIGN_OR_RETURN(auto served, ServedModel::Load("runs/ctr/model", ""));
//   ScoreResult r;
//   TESSERA_RETURN_IF_ERROR(served->Score(instances, "instances", /*explain=*/false, &r));
#ifndef TESSERA_SERVING_SERVED_MODEL_H_
#define TESSERA_SERVING_SERVED_MODEL_H_

#include <memory>
#include <optional>
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

  const std::string& version() const { return version_; }
  const models::Schema& schema() const { return saved_.schema; }
  // The field a bare recommend candidate names ("" if the schema has none).
  const std::string& item_field() const { return item_field_; }
  // The catalogue, or null without --catalog.
  const ItemCatalog* catalog() const { return catalog_ ? &*catalog_ : nullptr; }

  // Scores `instances` in one batch. Errors name the instance as
  // "<list>[i]": InvalidArgument for a bad instance, Unimplemented when
  // explaining with a model that cannot explain itself.
  Status Score(std::span<const nlohmann::json> instances, std::string_view list, bool explain,
               ScoreResult* out) const;

 private:
  ServedModel(models::SavedModel saved, std::string version)
      : saved_(std::move(saved)), version_(std::move(version)), encoder_(&saved_.schema) {}

  // A Model from the pool (a new one if it is empty); Release returns it.
  StatusOr<std::unique_ptr<models::Model>> Acquire() const;
  void Release(std::unique_ptr<models::Model> model) const;

  const models::SavedModel saved_;
  const std::string version_;
  const InstanceEncoder encoder_;
  std::string item_field_;
  std::optional<ItemCatalog> catalog_;

  mutable absl::Mutex mu_;
  // protected by mu_
  mutable std::vector<std::unique_ptr<models::Model>> pool_ ABSL_GUARDED_BY(mu_);
};

}  // namespace tessera::serving

#endif  // TESSERA_SERVING_SERVED_MODEL_H_
