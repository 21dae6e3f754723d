// Feature hashing: a token of a categorical or sequence field becomes a Key
// of its embedding table. Keys are stored on the parameter servers and in
// checkpoints, so the function is frozen: a change to it is a new
// kFeatureHashVersion, recorded in model manifests, and models trained with
// another version must not be served with this one.
//
// Version 1:
//   HashFeature(t, token) = (uint64(t) << 56) | (XXH64(token, seed 0) & (2^56 - 1))
// where XXH64 is the xxHash64 algorithm (Yann Collet's published
// specification, reimplemented in feature_hash.cc; it matches the reference
// implementation's test vectors, e.g. XXH64("abc", 0) = 0x44bc2cf5ad770999).
// The table index sits in the top 8 bits, so two tables never share a key;
// within a table two tokens collide with probability about 2^-56 per pair.
// Byte order: the algorithm reads the token as little-endian words on every
// platform, so keys are the same everywhere.
//
// Id salt (FeatureHasher below): with a secret salt, the token's 56 bits come
// from a keyed hash instead,
//   Hash(t, token) = (uint64(t) << 56) | (SipHash-2-4(k, token) & (2^56 - 1))
// where k (128 bits) is derived from the salt, so a key cannot be traced back
// to a raw id by hashing candidate ids (xxHash has no key; seeding it would
// not do: its steps are invertible). An empty salt is no salt: the keys are
// HashFeature's, exactly as without this feature. The salt itself is never
// stored; models record its fingerprint (models/saved_model.h).
//
// Thread-safe (pure functions; FeatureHasher is an immutable value).
#ifndef TESSERA_MODELS_FEATURE_HASH_H_
#define TESSERA_MODELS_FEATURE_HASH_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "common/types.h"

namespace tessera::models {

inline constexpr uint32_t kFeatureHashVersion = 1;
// Table indexes are 0 .. kMaxTables - 1 (0xFF is never a key's top byte).
inline constexpr int kMaxTables = 255;
inline constexpr int kTableShift = 56;
inline constexpr Key kTokenHashMask = (Key{1} << kTableShift) - 1;

// xxHash64 of `data` with `seed`.
uint64_t XxHash64(std::string_view data, uint64_t seed);

// REQUIRES: 0 <= table_index < kMaxTables.
inline Key HashFeature(int table_index, std::string_view token) {
  return (static_cast<Key>(table_index) << kTableShift) | (XxHash64(token, 0) & kTokenHashMask);
}

// The table index a key belongs to.
inline int TableOfKey(Key key) { return static_cast<int>(key >> kTableShift); }

// SipHash-2-4 (Aumasson and Bernstein, 2012) of `data` under the 128-bit key
// (k0, k1): k0 is the key's first 8 bytes read little-endian, k1 the next 8.
uint64_t SipHash24(uint64_t k0, uint64_t k1, std::string_view data);

// Turns tokens into keys, with or without an id salt (see the file comment).
// Copyable value; thread-safe.
//
// Example:
//   FeatureHasher hasher = FeatureHasher::FromSalt(salt);  // "" = unsalted
//   Key k = hasher.Hash(table_index, "u123");
//   manifest.id_salt_fingerprint = hasher.fingerprint();
class FeatureHasher {
 public:
  FeatureHasher() = default;  // unsalted
  // `salt` is any bytes; empty means unsalted. Only derived values are kept.
  static FeatureHasher FromSalt(std::string_view salt);

  bool salted() const { return salted_; }
  // REQUIRES: 0 <= table_index < kMaxTables.
  Key Hash(int table_index, std::string_view token) const {
    if (!salted_) return HashFeature(table_index, token);
    return (static_cast<Key>(table_index) << kTableShift) |
           (SipHash24(k0_, k1_, token) & kTokenHashMask);
  }
  // "" when unsalted; else 16 hex digits that identify the salt without
  // revealing it (a keyed hash of a fixed text), for manifests and errors.
  const std::string& fingerprint() const { return fingerprint_; }

  friend bool operator==(const FeatureHasher& a, const FeatureHasher& b) {
    return a.fingerprint_ == b.fingerprint_;
  }

 private:
  bool salted_ = false;
  uint64_t k0_ = 0;
  uint64_t k1_ = 0;
  std::string fingerprint_;
};

}  // namespace tessera::models

#endif  // TESSERA_MODELS_FEATURE_HASH_H_
