// Key -> slot -> server. Keys hash to a fixed number of virtual slots and a
// shard map assigns each slot to a server rank, so ownership can move slot by
// slot (replication, re-sharding). Dense tables follow the same map: element i
// of a dense table of `size` floats lives in slot DenseSlotOf(i, size), so a
// server owns the dense elements of exactly the slots it owns.
#ifndef TESSERA_COMMON_SHARDING_H_
#define TESSERA_COMMON_SHARDING_H_

#include <cstdint>
#include <vector>

#include "common/types.h"

namespace tessera {

inline constexpr uint32_t kDefaultNumSlots = 4096;

// A fast 64-bit finalizer (splitmix64). Stable across versions: it decides
// where rows live and which initial value a key gets.
inline uint64_t Mix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// REQUIRES: num_slots > 0.
inline SlotId SlotOfKey(Key key, uint32_t num_slots) {
  return static_cast<SlotId>((static_cast<unsigned __int128>(Mix64(key)) * num_slots) >> 64);
}

// First dense element of `slot` in a dense table of `size` elements.
inline uint64_t DenseSlotBegin(SlotId slot, uint64_t size, uint32_t num_slots) {
  return (static_cast<unsigned __int128>(slot) * size + num_slots - 1) / num_slots;
}

// A contiguous run of dense elements owned by one server.
struct DenseRange {
  int32_t server = 0;
  uint64_t begin = 0;
  uint64_t end = 0;  // exclusive
  friend bool operator==(const DenseRange&, const DenseRange&) = default;
};

// Slot -> server rank. Thread-compatible (immutable after construction in
// practice: a new cluster view brings a new ShardMap).
class ShardMap {
 public:
  ShardMap() = default;
  // REQUIRES: every owner in [0, num_servers).
  ShardMap(std::vector<int32_t> slot_owner, int32_t num_servers);
  // Contiguous slot ranges, server r owning [r*n/S, (r+1)*n/S).
  static ShardMap Uniform(uint32_t num_slots, int32_t num_servers);

  uint32_t num_slots() const { return static_cast<uint32_t>(slot_owner_.size()); }
  int32_t num_servers() const { return num_servers_; }
  const std::vector<int32_t>& slot_owner() const { return slot_owner_; }
  int32_t OwnerOfSlot(SlotId slot) const { return slot_owner_[slot]; }
  int32_t OwnerOfKey(Key key) const { return slot_owner_[SlotOfKey(key, num_slots())]; }
  // Maximal runs of consecutive dense elements with one owner, in order,
  // covering [0, size). Empty when size == 0.
  std::vector<DenseRange> DenseRanges(uint64_t size) const;
  // The runs of DenseRanges(size) owned by `server`.
  std::vector<DenseRange> DenseRangesOf(int32_t server, uint64_t size) const;

 private:
  std::vector<int32_t> slot_owner_;
  int32_t num_servers_ = 0;
};

// Replication placement. live[r]: server r is alive. The backups of
// `primary` are the next replication - 1 live servers after it in rank
// order, wrapping around (fewer when fewer servers are live), so every slot
// of one primary has the same backups and a primary's first backup holds all
// of its rows.
std::vector<int32_t> BackupsOf(int32_t primary, const std::vector<bool>& live,
                               uint32_t replication);

// The shard map after failures: every slot of a server that is not live goes
// to the next live server after it in rank order (its first backup while it
// was alive). REQUIRES: some server is live.
ShardMap PromoteBackups(const ShardMap& map, const std::vector<bool>& live);

}  // namespace tessera

#endif  // TESSERA_COMMON_SHARDING_H_
