#include "common/curve_keys.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace tessera::testing {
namespace {

namespace fs = std::filesystem;

TEST(CurveKeysTest, CurveIsAvailableInThisLibzmq) { EXPECT_OK(CurveAvailable()); }

TEST(CurveKeysTest, GeneratedKeysAreAValidPair) {
  ASSERT_OK_AND_ASSIGN(CurveKeys keys, GenerateCurveKeys());
  EXPECT_EQ(keys.public_key.size(), kCurveKeyZ85Chars);
  EXPECT_EQ(keys.secret_key.size(), kCurveKeyZ85Chars);
  EXPECT_TRUE(keys.enabled());
  EXPECT_OK(ValidateCurveKeys(keys));
  ASSERT_OK_AND_ASSIGN(CurveKeys other, GenerateCurveKeys());
  EXPECT_NE(keys.secret_key, other.secret_key);
}

TEST(CurveKeysTest, WriteThenReadRoundTripsWithPrivateSecretFile) {
  TempDir tmp;
  const std::string dir = tmp.File("keys");
  ASSERT_OK_AND_ASSIGN(CurveKeys keys, GenerateCurveKeys());
  ASSERT_OK(WriteCurveKeys(keys, dir, /*overwrite=*/false));
  struct stat st;
  ASSERT_EQ(::stat((fs::path(dir) / kCurveSecretKeyFile).c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(::stat(dir.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  ASSERT_OK_AND_ASSIGN(CurveKeys read, ReadCurveKeys(dir));
  EXPECT_EQ(read.public_key, keys.public_key);
  EXPECT_EQ(read.secret_key, keys.secret_key);
}

TEST(CurveKeysTest, WriteRefusesToReplaceKeysUnlessAsked) {
  TempDir tmp;
  const std::string dir = tmp.path().string();
  ASSERT_OK_AND_ASSIGN(CurveKeys first, GenerateCurveKeys());
  ASSERT_OK_AND_ASSIGN(CurveKeys second, GenerateCurveKeys());
  ASSERT_OK(WriteCurveKeys(first, dir, false));
  EXPECT_EQ(WriteCurveKeys(second, dir, false).code(), StatusCode::kAlreadyExists);
  ASSERT_OK(WriteCurveKeys(second, dir, /*overwrite=*/true));
  ASSERT_OK_AND_ASSIGN(CurveKeys read, ReadCurveKeys(dir));
  EXPECT_EQ(read.secret_key, second.secret_key);
}

TEST(CurveKeysTest, ReadRejectsBadDirectories) {
  TempDir tmp;
  const std::string dir = tmp.path().string();
  EXPECT_EQ(ReadCurveKeys(tmp.File("missing")).status().code(), StatusCode::kNotFound);

  ASSERT_OK_AND_ASSIGN(CurveKeys keys, GenerateCurveKeys());
  ASSERT_OK(WriteCurveKeys(keys, dir, false));
  const fs::path secret = fs::path(dir) / kCurveSecretKeyFile;
  fs::permissions(secret, fs::perms::group_read, fs::perm_options::add);
  EXPECT_EQ(ReadCurveKeys(dir).status().code(), StatusCode::kFailedPrecondition);
  fs::permissions(secret, fs::perms::group_read, fs::perm_options::remove);

  // A public key from another pair.
  ASSERT_OK_AND_ASSIGN(CurveKeys other, GenerateCurveKeys());
  std::ofstream(fs::path(dir) / kCurvePublicKeyFile) << other.public_key << "\n";
  EXPECT_EQ(ReadCurveKeys(dir).status().code(), StatusCode::kInvalidArgument);

  std::ofstream(fs::path(dir) / kCurvePublicKeyFile) << "# comment\nnot-a-key\n";
  EXPECT_EQ(ReadCurveKeys(dir).status().code(), StatusCode::kInvalidArgument);
}

TEST(CurveKeysTest, ValidateRejectsMalformedKeys) {
  ASSERT_OK_AND_ASSIGN(CurveKeys keys, GenerateCurveKeys());
  CurveKeys bad = keys;
  bad.secret_key.pop_back();
  EXPECT_EQ(ValidateCurveKeys(bad).code(), StatusCode::kInvalidArgument);
  bad = keys;
  bad.public_key[0] = '"';  // not a Z85 character
  EXPECT_EQ(ValidateCurveKeys(bad).code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace tessera::testing
