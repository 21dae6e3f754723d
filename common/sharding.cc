#include "common/sharding.h"

#include <cassert>
#include <utility>

namespace tessera {

ShardMap::ShardMap(std::vector<int32_t> slot_owner, int32_t num_servers)
    : slot_owner_(std::move(slot_owner)), num_servers_(num_servers) {}

ShardMap ShardMap::Uniform(uint32_t num_slots, int32_t num_servers) {
  assert(num_slots > 0 && num_servers > 0);
  std::vector<int32_t> owner(num_slots);
  for (uint32_t s = 0; s < num_slots; ++s) {
    owner[s] = static_cast<int32_t>(static_cast<uint64_t>(s) * num_servers / num_slots);
  }
  return ShardMap(std::move(owner), num_servers);
}

std::vector<DenseRange> ShardMap::DenseRanges(uint64_t size) const {
  std::vector<DenseRange> runs;
  const uint32_t n = num_slots();
  for (uint32_t s = 0; s < n; ++s) {
    uint64_t begin = DenseSlotBegin(s, size, n);
    uint64_t end = DenseSlotBegin(s + 1, size, n);
    if (begin == end) continue;
    if (!runs.empty() && runs.back().server == slot_owner_[s] && runs.back().end == begin) {
      runs.back().end = end;
    } else {
      runs.push_back({slot_owner_[s], begin, end});
    }
  }
  return runs;
}

std::vector<DenseRange> ShardMap::DenseRangesOf(int32_t server, uint64_t size) const {
  std::vector<DenseRange> mine;
  for (const DenseRange& r : DenseRanges(size)) {
    if (r.server == server) mine.push_back(r);
  }
  return mine;
}

namespace {
int32_t NextLive(int32_t from, const std::vector<bool>& live) {
  const auto n = static_cast<int32_t>(live.size());
  for (int32_t step = 1; step <= n; ++step) {
    const int32_t r = (from + step) % n;
    if (live[r]) return r;
  }
  return -1;
}
}  // namespace

std::vector<int32_t> BackupsOf(int32_t primary, const std::vector<bool>& live,
                               uint32_t replication) {
  std::vector<int32_t> backups;
  const auto n = static_cast<int32_t>(live.size());
  for (int32_t step = 1; step < n && backups.size() + 1 < replication; ++step) {
    const int32_t r = (primary + step) % n;
    if (live[r]) backups.push_back(r);
  }
  return backups;
}

ShardMap PromoteBackups(const ShardMap& map, const std::vector<bool>& live) {
  std::vector<int32_t> owners = map.slot_owner();
  for (int32_t& owner : owners) {
    if (!live[owner]) owner = NextLive(owner, live);
  }
  return ShardMap(std::move(owners), map.num_servers());
}

}  // namespace tessera
