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

// SipHash-2-4 test vectors of the reference implementation (Aumasson and
// Bernstein, vectors.h): key 00 01 .. 0f, message 00 01 .. (n - 1).
TEST(FeatureHashTest, SipHash24MatchesTheReferenceVectors) {
  const uint64_t k0 = 0x0706050403020100ULL;
  const uint64_t k1 = 0x0f0e0d0c0b0a0908ULL;
  std::string message;
  for (int i = 0; i < 64; ++i) message.push_back(static_cast<char>(i));
  EXPECT_EQ(SipHash24(k0, k1, message.substr(0, 0)), 0x726fdb47dd0e0e31ULL);
  EXPECT_EQ(SipHash24(k0, k1, message.substr(0, 1)), 0x74f839c593dc67fdULL);
  EXPECT_EQ(SipHash24(k0, k1, message.substr(0, 8)), 0x93f5f5799a932462ULL);
  EXPECT_EQ(SipHash24(k0, k1, message.substr(0, 15)), 0xa129ca6149be45e5ULL);
}

TEST(FeatureHashTest, AnUnsaltedHasherHashesAsVersion1) {
  const FeatureHasher unsalted;
  const FeatureHasher empty = FeatureHasher::FromSalt("");
  EXPECT_FALSE(unsalted.salted());
  EXPECT_FALSE(empty.salted());
  EXPECT_EQ(unsalted.fingerprint(), "");
  EXPECT_EQ(empty.fingerprint(), "");
  EXPECT_EQ(unsalted.Hash(0, "68fd1e64"), 0x003ccd85c9c22fe4ULL);
  EXPECT_EQ(empty.Hash(3, "i12345"), 0x0371ab8c8936ccc9ULL);
  for (int i = 0; i < 1000; ++i) {
    EXPECT_EQ(unsalted.Hash(i % kMaxTables, std::to_string(i)),
              HashFeature(i % kMaxTables, std::to_string(i)));
  }
}

TEST(FeatureHashTest, SameIdWithTwoSaltsGivesDifferentKeys) {
  const FeatureHasher a = FeatureHasher::FromSalt("salt-a");
  const FeatureHasher b = FeatureHasher::FromSalt("salt-b");
  ASSERT_TRUE(a.salted());
  for (const std::string id : {"u123", "u456", "", "a longer id of more than 32 bytes ......"}) {
    EXPECT_NE(a.Hash(0, id), b.Hash(0, id)) << id;
    EXPECT_NE(a.Hash(0, id), HashFeature(0, id)) << id;
    // The same salt always gives the same key, in its table's top byte.
    EXPECT_EQ(a.Hash(0, id), FeatureHasher::FromSalt("salt-a").Hash(0, id));
    EXPECT_EQ(TableOfKey(a.Hash(7, id)), 7);
    EXPECT_EQ(a.Hash(7, id) & kTokenHashMask, a.Hash(0, id));
  }
}

TEST(FeatureHashTest, FingerprintNamesTheSaltWithoutHoldingIt) {
  const FeatureHasher a = FeatureHasher::FromSalt("salt-a");
  EXPECT_EQ(a.fingerprint().size(), 16u);
  EXPECT_EQ(a.fingerprint().find_first_not_of("0123456789abcdef"), std::string::npos);
  EXPECT_EQ(a.fingerprint(), FeatureHasher::FromSalt("salt-a").fingerprint());
  EXPECT_NE(a.fingerprint(), FeatureHasher::FromSalt("salt-b").fingerprint());
  EXPECT_TRUE(a == FeatureHasher::FromSalt("salt-a"));
  EXPECT_FALSE(a == FeatureHasher());
}

TEST(FeatureHashTest, SaltedKeysDoNotCollide) {
  const FeatureHasher h = FeatureHasher::FromSalt("s");
  absl::flat_hash_set<Key> keys;
  for (int i = 0; i < 200000; ++i) keys.insert(h.Hash(5, std::to_string(i)));
  EXPECT_EQ(keys.size(), 200000u);
}

}  // namespace
}  // namespace tessera::models
