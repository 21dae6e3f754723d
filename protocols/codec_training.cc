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
                                               c.chunks_total, c.chunks_completed);
  return FinishEnvelope(fbb, header, wire::Body::DataChunkReply, body.Union());
}

Frame EncodeClockRequest(const Header& header, const ClockInfo& clock) {
  flatbuffers::FlatBufferBuilder fbb(InitialBuilderSize(header, 16));
  const auto body = wire::CreateClockRequest(fbb, clock.step, clock.done, clock.turn);
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
  if (!c.done && (c.path.empty() || c.end < c.begin)) {
    return InvalidArgumentError(internal::Cat("data chunk ", c.id, ": bad path or range [",
                                              c.begin, ", ", c.end, ")"));
  }
  return c;
}

StatusOr<ClockInfo> DecodedMessage::AsClockRequest() const {
  TESSERA_RETURN_IF_ERROR(internal::ExpectType(type_, MessageType::kClockRequest));
  const wire::ClockRequest* w = envelope_->body_as_ClockRequest();
  return ClockInfo{w->step(), w->done(), w->turn()};
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
