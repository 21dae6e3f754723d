// Training coordination messages: data chunks, the step clock, saving.
#include <string>
#include <utility>

#include "flatbuffers/flatbuffers.h"
#include "protocols/codec.h"
#include "protocols/codec_internal.h"
#include "protocols/tessera_generated.h"

namespace tessera::protocol {
namespace {

using internal::FinishEnvelope;
using internal::InitialBuilderSize;

std::string StringOf(const flatbuffers::String* s) {
  return s == nullptr ? std::string() : std::string(s->c_str(), s->size());
}

}  // namespace

Frame EncodeDataRequest(const Header& header, std::optional<uint64_t> completed) {
  flatbuffers::FlatBufferBuilder fbb(InitialBuilderSize(header, 16));
  const auto body =
      wire::CreateDataRequest(fbb, completed.value_or(0), completed.has_value());
  return FinishEnvelope(fbb, header, wire::Body::DataRequest, body.Union());
}

Frame EncodeDataChunkReply(const Header& header, const DataChunkInfo& c) {
  flatbuffers::FlatBufferBuilder fbb(InitialBuilderSize(header, c.path.size() + 64));
  const auto path = fbb.CreateString(c.path.data(), c.path.size());
  const auto body = wire::CreateDataChunkReply(fbb, c.done, c.id, c.epoch, path, c.begin, c.end,
                                               c.chunks_total, c.chunks_completed, c.retry);
  return FinishEnvelope(fbb, header, wire::Body::DataChunkReply, body.Union());
}

Frame EncodeClockRequest(const Header& header, const ClockInfo& clock) {
  flatbuffers::FlatBufferBuilder fbb(InitialBuilderSize(header, 16));
  const auto body = wire::CreateClockRequest(
      fbb, clock.step, clock.done, clock.turn, clock.position.has_value(),
      clock.position ? clock.position->chunk : 0, clock.position ? clock.position->offset : 0,
      clock.idle);
  return FinishEnvelope(fbb, header, wire::Body::ClockRequest, body.Union());
}

Frame EncodeClockReply(const Header& header, const ClockReplyInfo& reply) {
  flatbuffers::FlatBufferBuilder fbb(InitialBuilderSize(header, 16));
  const auto body = wire::CreateClockReply(fbb, reply.all_done, reply.spread);
  return FinishEnvelope(fbb, header, wire::Body::ClockReply, body.Union());
}

Frame EncodeSaveRequest(const Header& header, std::string_view dir) {
  flatbuffers::FlatBufferBuilder fbb(InitialBuilderSize(header, dir.size()));
  const auto body = wire::CreateSaveRequest(fbb, fbb.CreateString(dir.data(), dir.size()));
  return FinishEnvelope(fbb, header, wire::Body::SaveRequest, body.Union());
}

Frame EncodeSnapshotRequest(const Header& header, const SnapshotInfo& snapshot) {
  flatbuffers::FlatBufferBuilder fbb(InitialBuilderSize(header, snapshot.dir.size() + 24));
  const auto dir = fbb.CreateString(snapshot.dir.data(), snapshot.dir.size());
  const auto body = wire::CreateSnapshotRequest(fbb, snapshot.version, dir, snapshot.full);
  return FinishEnvelope(fbb, header, wire::Body::SnapshotRequest, body.Union());
}

Frame EncodeSnapshotFlushRequest(const Header& header, uint64_t version) {
  flatbuffers::FlatBufferBuilder fbb(InitialBuilderSize(header, 16));
  const auto body = wire::CreateSnapshotFlushRequest(fbb, version);
  return FinishEnvelope(fbb, header, wire::Body::SnapshotFlushRequest, body.Union());
}

Frame EncodeRestoreRequest(const Header& header, std::span<const RestoreTable> tables) {
  size_t bytes = 16;
  for (const RestoreTable& t : tables) {
    for (const std::string& f : t.files) bytes += f.size() + 8;
  }
  flatbuffers::FlatBufferBuilder fbb(InitialBuilderSize(header, bytes));
  std::vector<flatbuffers::Offset<wire::RestoreTableW>> entries;
  for (const RestoreTable& t : tables) {
    std::vector<flatbuffers::Offset<flatbuffers::String>> files;
    for (const std::string& f : t.files) files.push_back(fbb.CreateString(f.data(), f.size()));
    entries.push_back(wire::CreateRestoreTableW(fbb, t.table, fbb.CreateVector(files)));
  }
  const auto body = wire::CreateRestoreRequest(fbb, fbb.CreateVector(entries));
  return FinishEnvelope(fbb, header, wire::Body::RestoreRequest, body.Union());
}

StatusOr<std::optional<uint64_t>> DecodedMessage::AsDataRequest() const {
  TESSERA_RETURN_IF_ERROR(internal::ExpectType(type_, MessageType::kDataRequest));
  const wire::DataRequest* w = envelope_->body_as_DataRequest();
  return w->has_completed() ? std::optional<uint64_t>(w->completed()) : std::nullopt;
}

StatusOr<DataChunkInfo> DecodedMessage::AsDataChunkReply() const {
  TESSERA_RETURN_IF_ERROR(internal::ExpectType(type_, MessageType::kDataChunkReply));
  const wire::DataChunkReply* w = envelope_->body_as_DataChunkReply();
  DataChunkInfo c;
  c.done = w->done();
  c.id = w->id();
  c.epoch = w->epoch();
  c.path = StringOf(w->path());
  c.begin = w->begin();
  c.end = w->end();
  c.chunks_total = w->chunks_total();
  c.chunks_completed = w->chunks_completed();
  c.retry = w->retry();
  if (!c.done && !c.retry && (c.path.empty() || c.end < c.begin)) {
    return InvalidArgumentError(internal::Cat("data chunk ", c.id, ": bad path or range [",
                                              c.begin, ", ", c.end, ")"));
  }
  return c;
}

StatusOr<ClockInfo> DecodedMessage::AsClockRequest() const {
  TESSERA_RETURN_IF_ERROR(internal::ExpectType(type_, MessageType::kClockRequest));
  const wire::ClockRequest* w = envelope_->body_as_ClockRequest();
  ClockInfo clock{w->step(), w->done(), w->turn(), std::nullopt, w->idle()};
  if (w->has_position()) clock.position = DataPosition{w->position_chunk(), w->position_offset()};
  return clock;
}

StatusOr<ClockReplyInfo> DecodedMessage::AsClockReply() const {
  TESSERA_RETURN_IF_ERROR(internal::ExpectType(type_, MessageType::kClockReply));
  const wire::ClockReply* w = envelope_->body_as_ClockReply();
  return ClockReplyInfo{w->all_done(), w->spread()};
}

StatusOr<std::string> DecodedMessage::AsSaveRequest() const {
  TESSERA_RETURN_IF_ERROR(internal::ExpectType(type_, MessageType::kSaveRequest));
  std::string dir = StringOf(envelope_->body_as_SaveRequest()->dir());
  if (dir.empty()) return InvalidArgumentError("save request: empty directory");
  return dir;
}

}  // namespace tessera::protocol

namespace tessera::protocol {

StatusOr<SnapshotInfo> DecodedMessage::AsSnapshotRequest() const {
  TESSERA_RETURN_IF_ERROR(internal::ExpectType(type_, MessageType::kSnapshotRequest));
  const wire::SnapshotRequest* w = envelope_->body_as_SnapshotRequest();
  SnapshotInfo s{w->version(), StringOf(w->dir()), w->full()};
  if (s.dir.empty()) return InvalidArgumentError("snapshot request: empty directory");
  if (s.version == 0) return InvalidArgumentError("snapshot request: version 0");
  return s;
}

StatusOr<uint64_t> DecodedMessage::AsSnapshotFlushRequest() const {
  TESSERA_RETURN_IF_ERROR(internal::ExpectType(type_, MessageType::kSnapshotFlushRequest));
  return envelope_->body_as_SnapshotFlushRequest()->version();
}

StatusOr<std::vector<RestoreTable>> DecodedMessage::AsRestoreRequest() const {
  TESSERA_RETURN_IF_ERROR(internal::ExpectType(type_, MessageType::kRestoreRequest));
  const wire::RestoreRequest* w = envelope_->body_as_RestoreRequest();
  std::vector<RestoreTable> tables;
  if (w->tables() == nullptr) return tables;
  for (const wire::RestoreTableW* t : *w->tables()) {
    if (t == nullptr) return InvalidArgumentError("restore request: null table entry");
    RestoreTable table{t->table(), {}};
    if (t->files() != nullptr) {
      for (const flatbuffers::String* f : *t->files()) {
        if (f == nullptr || f->size() == 0) {
          return InvalidArgumentError(internal::Cat("restore request: table ", table.table,
                                                    ": empty file name"));
        }
        table.files.push_back(StringOf(f));
      }
    }
    tables.push_back(std::move(table));
  }
  return tables;
}

}  // namespace tessera::protocol
