// Replication messages (primary server -> backups) and the cluster view's
// liveness helper.
#include <cstring>

#include "flatbuffers/flatbuffers.h"
#include "protocols/codec.h"
#include "protocols/codec_internal.h"
#include "protocols/tessera_generated.h"

namespace tessera::protocol {

namespace {

template <typename T>
StatusOr<std::span<const T>> OptionalSpan(const flatbuffers::Vector<T>* v, std::string_view what) {
  // An empty vector's data pointer need not be aligned: nothing is read.
  if (v == nullptr || v->size() == 0) return std::span<const T>();
  if (reinterpret_cast<uintptr_t>(v->data()) % alignof(T) != 0) {
    return InvalidArgumentError(internal::Cat(what, ": misaligned vector"));
  }
  return std::span<const T>(v->data(), v->size());
}

}  // namespace

std::vector<bool> ClusterView::LiveServers() const {
  std::vector<bool> live(servers.size(), true);
  for (int32_t rank : dead_servers) {
    if (rank >= 0 && static_cast<size_t>(rank) < live.size()) live[rank] = false;
  }
  return live;
}

size_t ReplicateBatch::payload_bytes() const {
  size_t bytes = op_ids.size() * sizeof(uint64_t);
  for (const ReplicaRows& r : rows) bytes += r.records.size() + r.deleted.size() * sizeof(Key) + 32;
  for (const ReplicaDense& d : dense) {
    bytes += (d.values.size() + d.state.size()) * sizeof(float) + 48;
  }
  return bytes;
}

Frame EncodeReplicate(const Header& header, const ReplicateBatch& batch) {
  flatbuffers::FlatBufferBuilder fbb(internal::InitialBuilderSize(header, batch.payload_bytes()));
  std::vector<flatbuffers::Offset<wire::ReplicaRowsW>> rows;
  rows.reserve(batch.rows.size());
  for (const ReplicaRows& r : batch.rows) {
    const auto records = fbb.CreateVector(reinterpret_cast<const uint8_t*>(r.records.data()),
                                          r.records.size());
    const auto deleted = fbb.CreateVector(r.deleted);
    rows.push_back(wire::CreateReplicaRowsW(fbb, r.table, records, deleted));
  }
  std::vector<flatbuffers::Offset<wire::ReplicaDenseW>> dense;
  dense.reserve(batch.dense.size());
  for (const ReplicaDense& d : batch.dense) {
    const auto values = fbb.CreateVector(d.values);
    const auto state = fbb.CreateVector(d.state);
    dense.push_back(
        wire::CreateReplicaDenseW(fbb, d.table, d.begin, d.end, d.step, values, state));
  }
  const auto rows_vec = fbb.CreateVector(rows);
  const auto dense_vec = fbb.CreateVector(dense);
  const auto ops = fbb.CreateVector(batch.op_ids);
  const auto body =
      wire::CreateReplicateRequest(fbb, batch.epoch, batch.reset, rows_vec, dense_vec, ops,
                                   batch.batch_id, batch.captured);
  return internal::FinishEnvelope(fbb, header, wire::Body::ReplicateRequest, body.Union());
}

Frame EncodeReplicaSyncRequest(const Header& header) {
  flatbuffers::FlatBufferBuilder fbb(internal::InitialBuilderSize(header, 0));
  const auto body = wire::CreateReplicaSyncRequest(fbb);
  return internal::FinishEnvelope(fbb, header, wire::Body::ReplicaSyncRequest, body.Union());
}

StatusOr<ReplicateView> DecodedMessage::AsReplicate() const {
  TESSERA_RETURN_IF_ERROR(internal::ExpectType(type_, MessageType::kReplicateRequest));
  const wire::ReplicateRequest* w = envelope_->body_as_ReplicateRequest();
  ReplicateView view;
  view.epoch = w->epoch();
  view.reset = w->reset();
  view.batch_id = w->batch_id();
  view.captured = w->captured();
  if (w->rows() != nullptr) {
    for (const wire::ReplicaRowsW* r : *w->rows()) {
      if (r == nullptr) return InvalidArgumentError("ReplicateRequest.rows: null entry");
      ReplicaRowsView rv;
      rv.table = r->table();
      TESSERA_ASSIGN_OR_RETURN(std::span<const uint8_t> bytes,
                               OptionalSpan(r->records(), "ReplicateRequest.rows.records"));
      rv.records = std::as_bytes(bytes);
      TESSERA_ASSIGN_OR_RETURN(rv.deleted,
                               OptionalSpan(r->deleted(), "ReplicateRequest.rows.deleted"));
      view.rows.push_back(rv);
    }
  }
  if (w->dense() != nullptr) {
    for (const wire::ReplicaDenseW* d : *w->dense()) {
      if (d == nullptr) return InvalidArgumentError("ReplicateRequest.dense: null entry");
      ReplicaDenseView dv;
      dv.table = d->table();
      dv.begin = d->begin();
      dv.end = d->end();
      dv.step = d->step();
      TESSERA_ASSIGN_OR_RETURN(dv.values,
                               OptionalSpan(d->values(), "ReplicateRequest.dense.values"));
      TESSERA_ASSIGN_OR_RETURN(dv.state, OptionalSpan(d->state(), "ReplicateRequest.dense.state"));
      if (dv.begin > dv.end || dv.values.size() != dv.end - dv.begin) {
        return InvalidArgumentError(internal::Cat("ReplicateRequest.dense: range [", dv.begin, ", ",
                                                  dv.end, ") with ", dv.values.size(),
                                                  " values"));
      }
      view.dense.push_back(dv);
    }
  }
  TESSERA_ASSIGN_OR_RETURN(view.op_ids, OptionalSpan(w->op_ids(), "ReplicateRequest.op_ids"));
  return view;
}

}  // namespace tessera::protocol
