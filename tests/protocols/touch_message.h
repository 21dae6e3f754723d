// Reads every field of a decoded message through each accessor that accepts
// its type, summing into *sink so nothing is optimized away. Shared by the
// codec's random-fuzz test and its libFuzzer target: hostile input that
// decodes must survive every accessor.
#ifndef TESSERA_TESTS_PROTOCOLS_TOUCH_MESSAGE_H_
#define TESSERA_TESTS_PROTOCOLS_TOUCH_MESSAGE_H_

#include <cstdint>
#include <string>

#include "protocols/codec.h"

namespace tessera::protocol {

inline void TouchEveryAccessor(const DecodedMessage& m, uint64_t* sink) {
  *sink += m.header().request_id + m.header().token.size() + m.header().status.message().size() +
           static_cast<uint64_t>(m.type()) + m.frame().size();
  if (auto r = m.AsRegisterRequest(); r.ok()) *sink += r->endpoint.size() + r->host.size() + r->pid;
  if (auto r = m.AsRegisterReply(); r.ok()) *sink += r->rank;
  if (auto r = m.AsClusterView(); r.ok()) {
    *sink += r->epoch + r->shard_map.num_slots() + r->workers.size() + r->heartbeat_interval_ms;
    for (const NodeInfo& n : r->servers) *sink += n.endpoint.size() + n.host.size();
    for (const TableConfig& t : r->tables) *sink += t.name.size() + t.dim;
    for (uint32_t s = 0; s < r->shard_map.num_slots(); ++s) *sink += r->shard_map.OwnerOfSlot(s);
  }
  if (auto r = m.AsConfigureTables(); r.ok()) {
    for (const TableConfig& t : *r) *sink += t.name.size() + t.initializer.seed;
  }
  if (auto r = m.AsBarrierRequest(); r.ok()) *sink += static_cast<uint64_t>(*r);
  if (auto r = m.AsShutdownRequest(); r.ok()) *sink += r->size();
  if (auto r = m.AsPull(); r.ok()) {
    for (Key k : r->keys) *sink += k;
  }
  auto touch_push = [&](const StatusOr<PushView>& r) {
    if (!r.ok()) return;
    for (Key k : r->keys) *sink += k;
    for (float g : r->grads) *sink += static_cast<uint64_t>(g != 0.0f);
  };
  touch_push(m.AsPush());
  touch_push(m.AsPushPull());
  if (auto r = m.AsValuesReply(); r.ok()) {
    for (float v : *r) *sink += static_cast<uint64_t>(v != 0.0f);
  }
  if (auto r = m.AsDensePull(); r.ok()) *sink += r->begin + r->count;
  if (auto r = m.AsDensePush(); r.ok()) {
    for (float g : r->grads) *sink += static_cast<uint64_t>(g != 0.0f);
  }
  if (auto r = m.AsDataRequest(); r.ok()) *sink += r->value_or(1);
  if (auto r = m.AsDataChunkReply(); r.ok()) {
    *sink += r->id + r->epoch + r->path.size() + r->begin + r->end + r->chunks_total;
  }
  if (auto r = m.AsClockRequest(); r.ok()) {
    *sink += r->step + (r->position ? r->position->chunk + r->position->offset : 0);
  }
  if (auto r = m.AsClockReply(); r.ok()) *sink += r->spread + r->all_done;
  if (auto r = m.AsSaveRequest(); r.ok()) *sink += r->size();
  if (auto r = m.AsSnapshotRequest(); r.ok()) *sink += r->version + r->dir.size();
  if (auto r = m.AsSnapshotFlushRequest(); r.ok()) *sink += *r;
  if (auto r = m.AsRestoreRequest(); r.ok()) {
    for (const RestoreTable& t : *r) {
      for (const std::string& f : t.files) *sink += t.table + f.size();
    }
  }
  if (auto r = m.AsReplicate(); r.ok()) {
    for (const ReplicaRowsView& rows : r->rows) {
      for (std::byte b : rows.records) *sink += static_cast<uint8_t>(b);
      for (Key k : rows.deleted) *sink += k;
    }
    for (const ReplicaDenseView& d : r->dense) {
      for (float v : d.values) *sink += static_cast<uint64_t>(v != 0.0f);
      for (float v : d.state) *sink += static_cast<uint64_t>(v != 0.0f);
    }
    for (uint64_t op : r->op_ids) *sink += op;
  }
  if (auto r = m.AsForgetRequest(); r.ok()) {
    for (Key k : r->keys) *sink += k;
    *sink += r->table + r->reply_endpoint.size();
  }
  if (auto r = m.AsForgetReply(); r.ok()) {
    *sink += r->requested;
    for (const ForgetResult& f : r->results) {
      *sink += static_cast<uint64_t>(f.server) + f.erased + f.owned + f.status.message().size();
    }
  }
}

}  // namespace tessera::protocol

#endif  // TESSERA_TESTS_PROTOCOLS_TOUCH_MESSAGE_H_
