// The id salt in the data path and in saved models: parsed keys come from
// the schema's hasher, manifests record the salt's fingerprint (and nothing
// when unsalted), and scoring a model needs its salt.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>

#include "models/eval_runner.h"
#include "models/feature_hash.h"
#include "models/saved_model.h"
#include "models/schema.h"
#include "models/tsv_parser.h"
#include "tests/models/saved_model_test_util.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace tessera::models {
namespace {

std::string ReadText(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

TEST(IdSaltTest, TsvParserHashesWithTheSchemasHasher) {
  ASSERT_OK_AND_ASSIGN(Schema schema, Schema::Parse(testing::kTestSchema, "test"));
  Example plain, salted;
  std::string reason;
  ASSERT_EQ(TsvParser(&schema).Parse("1\tu1\ti9\t3\ti3,i7", &plain, &reason), LineKind::kOk);
  const FeatureHasher hasher = FeatureHasher::FromSalt("secret");
  schema.set_hasher(hasher);
  ASSERT_EQ(TsvParser(&schema).Parse("1\tu1\ti9\t3\ti3,i7", &salted, &reason), LineKind::kOk);
  EXPECT_EQ(plain.FieldKeys(0)[0], HashFeature(0, "u1"));
  EXPECT_EQ(salted.FieldKeys(0)[0], hasher.Hash(0, "u1"));
  EXPECT_EQ(salted.FieldKeys(3)[1], hasher.Hash(1, "i7"));
  EXPECT_NE(salted.FieldKeys(0)[0], plain.FieldKeys(0)[0]);
  EXPECT_EQ(salted.numeric, plain.numeric);
}

class SavedModelSaltTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK(testing::WriteHandModel(dir_, ModelConfig{.type = "lr"}, 2,
                                      {{HashFeature(0, "u1")}, {HashFeature(1, "i1")}})
                  .status());
  }
  // Rewrites the manifest with `fingerprint`.
  void SetFingerprint(const std::string& fingerprint) {
    ASSERT_OK_AND_ASSIGN(ModelManifest m, ReadManifest(dir_));
    m.id_salt_fingerprint = fingerprint;
    ASSERT_OK(WriteManifest(dir_, m));
  }

  tessera::testing::TempDir tmp_;
  const std::string dir_ = tmp_.File("model");
};

TEST_F(SavedModelSaltTest, UnsaltedManifestsHaveNoFingerprintKey) {
  EXPECT_EQ(ReadText(dir_ + "/manifest.json").find("id_salt_fingerprint"), std::string::npos);
  ASSERT_OK_AND_ASSIGN(ModelManifest m, ReadManifest(dir_));
  EXPECT_EQ(m.id_salt_fingerprint, "");
  EXPECT_OK(CheckIdSalt(m, FeatureHasher(), dir_));
}

TEST_F(SavedModelSaltTest, FingerprintRoundTripsAndIsChecked) {
  const FeatureHasher salt = FeatureHasher::FromSalt("secret");
  SetFingerprint(salt.fingerprint());
  const std::string text = ReadText(dir_ + "/manifest.json");
  EXPECT_NE(text.find(salt.fingerprint()), std::string::npos);
  EXPECT_EQ(text.find("secret"), std::string::npos);  // never the salt
  ASSERT_OK_AND_ASSIGN(ModelManifest m, ReadManifest(dir_));
  EXPECT_EQ(m.id_salt_fingerprint, salt.fingerprint());
  EXPECT_OK(CheckIdSalt(m, salt, dir_));

  const Status unsalted = CheckIdSalt(m, FeatureHasher(), dir_);
  EXPECT_EQ(unsalted.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(unsalted.message().find("none is set"), absl::string_view::npos) << unsalted;
  const Status other = CheckIdSalt(m, FeatureHasher::FromSalt("other"), dir_);
  EXPECT_EQ(other.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(other.message().find("another id salt"), absl::string_view::npos) << other;

  ModelManifest plain = m;
  plain.id_salt_fingerprint = "";
  EXPECT_FALSE(SameModel(m, plain));  // a delta cannot change the salt
  EXPECT_EQ(CheckIdSalt(plain, salt, dir_).code(), StatusCode::kFailedPrecondition);
}

TEST_F(SavedModelSaltTest, MalformedFingerprintsAreRefused) {
  ASSERT_OK_AND_ASSIGN(ModelManifest m, ReadManifest(dir_));
  m.id_salt_fingerprint = "not hex";
  EXPECT_EQ(WriteManifest(dir_, m).code(), StatusCode::kInvalidArgument);
  std::string text = ReadText(dir_ + "/manifest.json");
  text.replace(text.find("\"format\""), 0, "\"id_salt_fingerprint\": \"XYZ\", ");
  std::ofstream(dir_ + "/manifest.json") << text;
  EXPECT_EQ(ReadManifest(dir_).status().code(), StatusCode::kInvalidArgument);
}

TEST_F(SavedModelSaltTest, UseIdSaltSetsTheSchemasHasher) {
  const FeatureHasher salt = FeatureHasher::FromSalt("secret");
  SetFingerprint(salt.fingerprint());
  ASSERT_OK_AND_ASSIGN(SavedModel saved, LoadSavedModel(dir_, /*with_state=*/false));
  EXPECT_FALSE(saved.schema.hasher().salted());  // a manifest's schema is unsalted
  EXPECT_EQ(UseIdSalt(FeatureHasher::FromSalt("x"), dir_, &saved).code(),
            StatusCode::kFailedPrecondition);
  ASSERT_OK(UseIdSalt(salt, dir_, &saved));
  EXPECT_TRUE(saved.schema.hasher() == salt);
}

TEST_F(SavedModelSaltTest, EvalRefusesAnotherSalt) {
  SetFingerprint(FeatureHasher::FromSalt("secret").fingerprint());
  const std::string data = tmp_.File("test.tsv");
  std::ofstream(data) << "1\tu1\ti1\t2\ti1\n0\tu2\ti2\t1\t\n";
  EXPECT_EQ(EvaluateSavedModel(dir_, {data}, {}).status().code(),
            StatusCode::kFailedPrecondition);
  EXPECT_EQ(EvaluateSavedModel(dir_, {data}, {.id_hasher = FeatureHasher::FromSalt("nope")})
                .status()
                .code(),
            StatusCode::kFailedPrecondition);
  EXPECT_OK(EvaluateSavedModel(dir_, {data}, {.id_hasher = FeatureHasher::FromSalt("secret")})
                .status());
}

}  // namespace
}  // namespace tessera::models
