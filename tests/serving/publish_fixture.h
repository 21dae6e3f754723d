// Test helpers for serving published versions: a Publisher that writes a
// chain of versions of a small model (tests/models/publish_test_util.h:
// users u0..u39 and items i0..i39 of kTestSchema, random changes per delta
// to rows the instances below read, every dense value moving) into a
// publish directory, and the reference predictions of any version, from a
// ServedModel loaded afresh through its chain.
#ifndef TESSERA_TESTS_SERVING_PUBLISH_FIXTURE_H_
#define TESSERA_TESTS_SERVING_PUBLISH_FIXTURE_H_

#include <cstdint>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "models/feature_hash.h"
#include "models/model_versions.h"
#include "serving/served_model.h"
#include "tests/models/publish_test_util.h"

namespace tessera::serving::testing {

class Publisher {
 public:
  // A model of `type` (embedding_dim 4, hidden [8]) to publish into `dir`.
  static StatusOr<Publisher> Create(const std::string& dir, const std::string& type, int users = 40,
                                    int items = 40, uint64_t seed = 3) {
    std::vector<std::vector<Key>> keys(2);
    for (int k = 0; k < users; ++k) keys[0].push_back(models::HashFeature(0, absl::StrCat("u", k)));
    for (int k = 0; k < items; ++k) keys[1].push_back(models::HashFeature(1, absl::StrCat("i", k)));
    models::ModelConfig config;
    config.type = type;
    config.embedding_dim = 4;
    config.hidden = {8};
    TESSERA_ASSIGN_OR_RETURN(models::testing::RefModel ref,
                             models::testing::NewRefModel(config, keys, seed));
    return Publisher(dir, std::move(ref), seed);
  }

  // Publishes the next version: a full snapshot of the current parameters,
  // or a delta of `change` changed, `remove` deleted and `add` new rows per
  // sparse table (every dense value moves). `created_unix_ms` 0: the
  // fixture's default time. Returns the version.
  StatusOr<uint64_t> PublishFull(int64_t created_unix_ms = 0) {
    TESSERA_RETURN_IF_ERROR(
        models::testing::WriteRefVersion(dir_, latest_ + 1, ref_, nullptr, 0, 2, created_unix_ms));
    return ++latest_;
  }
  StatusOr<uint64_t> PublishDelta(int change = 5, int remove = 2, int add = 3,
                                  int64_t created_unix_ms = 0) {
    const models::testing::RefChanges changes =
        models::testing::MutateRefModel(&ref_, rng_, change, remove, add);
    TESSERA_RETURN_IF_ERROR(models::testing::WriteRefVersion(dir_, latest_ + 1, ref_, &changes,
                                                             latest_, 2, created_unix_ms));
    return ++latest_;
  }
  uint64_t latest() const { return latest_; }
  const std::string& dir() const { return dir_; }

  // The model of version `version` loaded afresh (through its chain).
  StatusOr<std::unique_ptr<ServedModel>> Load(uint64_t version) const {
    TESSERA_ASSIGN_OR_RETURN(models::SavedModel saved,
                             models::LoadModelVersion(dir_, version, /*with_state=*/false));
    return ServedModel::Create(std::move(saved), nullptr);
  }
  // The predictions of `instances` by version `version`.
  StatusOr<std::vector<float>> Predictions(uint64_t version,
                                           const std::vector<nlohmann::json>& instances) const {
    TESSERA_ASSIGN_OR_RETURN(std::unique_ptr<ServedModel> model, Load(version));
    ScoreResult result;
    TESSERA_RETURN_IF_ERROR(model->Score(instances, "instances", false, &result));
    return result.predictions;
  }

 private:
  Publisher(std::string dir, models::testing::RefModel ref, uint64_t seed)
      : dir_(std::move(dir)), ref_(std::move(ref)), rng_(seed) {}

  std::string dir_;
  models::testing::RefModel ref_;
  std::mt19937_64 rng_;
  uint64_t latest_ = 0;
};

// `n` instances of users and items the published model has rows for.
inline std::vector<nlohmann::json> SomeInstances(int n, int offset = 0) {
  std::vector<nlohmann::json> instances;
  for (int i = offset; i < offset + n; ++i) {
    instances.push_back({{"user_id", absl::StrCat("u", i % 40)},
                         {"item_id", absl::StrCat("i", (i * 7) % 40)},
                         {"price", 1.5 * (i % 9)},
                         {"hist", {absl::StrCat("i", (i + 3) % 40), absl::StrCat("i", i % 40)}}});
  }
  return instances;
}

}  // namespace tessera::serving::testing

#endif  // TESSERA_TESTS_SERVING_PUBLISH_FIXTURE_H_
