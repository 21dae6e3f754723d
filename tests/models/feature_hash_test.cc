#include "models/feature_hash.h"

#include <gtest/gtest.h>

#include <string>

#include "absl/container/flat_hash_set.h"

namespace tessera::models {
namespace {

// Reference values computed with the xxHash library (libxxhash 0.8.1, XXH64).
TEST(FeatureHashTest, XxHash64MatchesTheReferenceImplementation) {
  EXPECT_EQ(XxHash64("", 0), 0xef46db3751d8e999ULL);
  EXPECT_EQ(XxHash64("a", 0), 0xd24ec4f1a98c6e5bULL);
  EXPECT_EQ(XxHash64("abc", 0), 0x44bc2cf5ad770999ULL);
  EXPECT_EQ(XxHash64("abc", 1), 0xbea9ca8199328908ULL);
  EXPECT_EQ(XxHash64("68fd1e64", 0), 0x5d3ccd85c9c22fe4ULL);
  EXPECT_EQ(XxHash64("i12345", 0), 0xb271ab8c8936ccc9ULL);
  // 32 bytes and more take the four-lane path.
  EXPECT_EQ(XxHash64("0123456789abcdef0123456789abcdef", 0), 0x642a94958e71e6c5ULL);
  EXPECT_EQ(XxHash64("The quick brown fox jumps over the lazy dog", 0), 0x0b242d361fda71bcULL);
  std::string bytes(100, '\0');
  for (int i = 0; i < 100; ++i) bytes[i] = static_cast<char>(i);
  EXPECT_EQ(XxHash64(bytes, 0), 0x6ac1e58032166597ULL);
}

// Golden keys of version 1: changing any of these breaks every checkpoint.
TEST(FeatureHashTest, GoldenKeysOfVersion1) {
  static_assert(kFeatureHashVersion == 1);
  EXPECT_EQ(HashFeature(0, "68fd1e64"), 0x003ccd85c9c22fe4ULL);
  EXPECT_EQ(HashFeature(3, "i12345"), 0x0371ab8c8936ccc9ULL);
  EXPECT_EQ(HashFeature(254, ""), 0xfe46db3751d8e999ULL);
}

TEST(FeatureHashTest, TableIndexIsTheTopByte) {
  for (int table : {0, 1, 7, 100, 254}) {
    const Key key = HashFeature(table, "token");
    EXPECT_EQ(TableOfKey(key), table);
    EXPECT_EQ(key & kTokenHashMask, HashFeature(0, "token"));
  }
}

TEST(FeatureHashTest, SameTokenInDifferentTablesNeverCollides) {
  absl::flat_hash_set<Key> keys;
  for (int table = 0; table < kMaxTables; ++table) keys.insert(HashFeature(table, "same"));
  EXPECT_EQ(keys.size(), static_cast<size_t>(kMaxTables));
}

TEST(FeatureHashTest, NoCollisionsAmongManyTokens) {
  absl::flat_hash_set<Key> keys;
  for (int i = 0; i < 200000; ++i) keys.insert(HashFeature(5, std::to_string(i)));
  EXPECT_EQ(keys.size(), 200000u);
}

}  // namespace
}  // namespace tessera::models
