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
// Thread-safe (pure functions).
#ifndef TESSERA_MODELS_FEATURE_HASH_H_
#define TESSERA_MODELS_FEATURE_HASH_H_

#include <cstdint>
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

}  // namespace tessera::models

#endif  // TESSERA_MODELS_FEATURE_HASH_H_
