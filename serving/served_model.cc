#include "serving/served_model.h"

#include <charconv>
#include <cmath>
#include <utility>

#include "absl/strings/str_cat.h"
#include "models/batch_builder.h"
#include "models/explanation.h"
#include "models/explanation_json.h"

namespace tessera::serving {
namespace {

nlohmann::ordered_json ExplanationObject(const models::Schema& schema, const KeptTokens& tokens,
                                         const models::Explanation& e) {
  return models::ExplanationJsonObject(schema, e, [&](int field) { return tokens[field]; });
}

// The version a model answers with: its number, or for a plain saved
// model its creation second.
std::string VersionString(const models::ModelManifest& m) {
  return std::to_string(m.version != 0 ? m.version : static_cast<uint64_t>(m.created_unix_s));
}

}  // namespace

ServedModel::ServedModel(models::SavedModel saved, std::shared_ptr<const ItemCatalog> catalog)
    : saved_(std::move(saved)),
      version_(VersionString(saved_.manifest)),
      encoder_(&saved_.schema),
      catalog_(std::move(catalog)) {
  StatusOr<std::string> item_field = CatalogKeyField(saved_.schema);
  if (item_field.ok()) item_field_ = *item_field;
}

StatusOr<std::unique_ptr<ServedModel>> ServedModel::Create(
    models::SavedModel saved, std::shared_ptr<const ItemCatalog> catalog) {
  std::unique_ptr<ServedModel> served(new ServedModel(std::move(saved), std::move(catalog)));
  // Fails early on a model type this build cannot construct.
  TESSERA_ASSIGN_OR_RETURN(std::unique_ptr<models::Model> first, served->Acquire());
  served->Release(std::move(first));
  return served;
}

StatusOr<std::shared_ptr<const ItemCatalog>> ServedModel::LoadCatalog(
    const std::string& path, const models::Schema& schema) {
  TESSERA_ASSIGN_OR_RETURN(std::string item_field, CatalogKeyField(schema));
  TESSERA_ASSIGN_OR_RETURN(ItemCatalog catalog, ItemCatalog::Load(path, schema, item_field));
  return std::make_shared<const ItemCatalog>(std::move(catalog));
}

StatusOr<std::unique_ptr<ServedModel>> ServedModel::Load(const std::string& model_dir,
                                                         const std::string& catalog_path) {
  return Load(model_dir, catalog_path, models::FeatureHasher());
}

StatusOr<std::unique_ptr<ServedModel>> ServedModel::Load(const std::string& model_dir,
                                                         const std::string& catalog_path,
                                                         const models::FeatureHasher& id_hasher) {
  // The salt is checked first: a model of another salt is refused whole.
  TESSERA_ASSIGN_OR_RETURN(models::ModelManifest manifest, models::ReadManifest(model_dir));
  TESSERA_RETURN_IF_ERROR(models::CheckIdSalt(manifest, id_hasher, model_dir));
  TESSERA_ASSIGN_OR_RETURN(models::SavedModel saved,
                           models::LoadSavedModel(model_dir, /*with_state=*/false));
  TESSERA_RETURN_IF_ERROR(models::UseIdSalt(id_hasher, model_dir, &saved));
  std::shared_ptr<const ItemCatalog> catalog;
  if (!catalog_path.empty()) {
    TESSERA_ASSIGN_OR_RETURN(catalog, LoadCatalog(catalog_path, saved.schema));
  }
  return Create(std::move(saved), std::move(catalog));
}

std::unique_ptr<ServedModel> ServedModel::Clone() const {
  return std::unique_ptr<ServedModel>(new ServedModel(saved_, catalog_));
}

void ServedModel::ApplyDelta(const models::ModelDelta& delta) {
  models::ApplyReadDelta(delta, &saved_);
  version_ = VersionString(saved_.manifest);
}

StatusOr<std::unique_ptr<models::Model>> ServedModel::Acquire() const {
  {
    absl::MutexLock lock(&mu_);
    if (!pool_.empty()) {
      std::unique_ptr<models::Model> model = std::move(pool_.back());
      pool_.pop_back();
      return model;
    }
  }
  return models::NewModel(saved_.manifest.model, saved_.schema);
}

void ServedModel::Release(std::unique_ptr<models::Model> model) const {
  absl::MutexLock lock(&mu_);
  pool_.push_back(std::move(model));
}

Status ServedModel::Score(std::span<const nlohmann::json> instances, std::string_view list,
                          bool explain, ScoreResult* out) const {
  TESSERA_ASSIGN_OR_RETURN(std::unique_ptr<models::BatchBuilder> builder,
                           models::BatchBuilder::Create(&saved_.schema, {}));
  models::Batch batch;
  models::Example example;
  std::vector<KeptTokens> tokens(explain ? instances.size() : 0);
  builder->Start(&batch);
  for (size_t i = 0; i < instances.size(); ++i) {
    TESSERA_RETURN_IF_ERROR(encoder_.Encode(instances[i],
                                            absl::StrCat(std::string(list), "[", i, "]"), &example,
                                            explain ? &tokens[i] : nullptr));
    builder->Add(example);
  }
  builder->Finish();
  TESSERA_ASSIGN_OR_RETURN(std::vector<std::span<const float>> dense,
                           models::FillBatch(saved_, &batch));
  TESSERA_ASSIGN_OR_RETURN(std::unique_ptr<models::Model> model, Acquire());
  out->predictions.assign(instances.size(), 0.0f);
  if (batch.size > 0) model->Predict(batch, dense, out->predictions);
  out->explanations = nlohmann::ordered_json::array();
  Status status = OkStatus();
  if (explain) {
    std::vector<models::Explanation> explanations;
    status = model->Explain(batch, dense, &explanations);
    if (!status.ok()) {
      status = Status(status.code(),
                      absl::StrCat("model type '", saved_.manifest.model.type,
                                   "' cannot explain its predictions: ", status.message()));
    } else if (explanations.size() != instances.size()) {
      status = InternalError("the model explained a different number of instances");
    } else {
      for (size_t i = 0; i < instances.size(); ++i) {
        out->explanations.push_back(ExplanationObject(saved_.schema, tokens[i], explanations[i]));
      }
    }
  }
  Release(std::move(model));
  return status;
}

}  // namespace tessera::serving
