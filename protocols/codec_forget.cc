// Privacy messages (`tessera forget`): ForgetRequest and ForgetReply.
#include <cstdint>
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

Frame EncodeForgetRequest(const Header& header, TableId table, std::span<const Key> keys,
                          std::string_view reply_endpoint) {
  flatbuffers::FlatBufferBuilder fbb(
      InitialBuilderSize(header, keys.size() * sizeof(Key) + reply_endpoint.size() + 16));
  const auto endpoint = fbb.CreateString(reply_endpoint.data(), reply_endpoint.size());
  const auto key_vector = fbb.CreateVector(keys.data(), keys.size());
  const auto body = wire::CreateForgetRequest(fbb, table, key_vector, endpoint);
  return FinishEnvelope(fbb, header, wire::Body::ForgetRequest, body.Union());
}

Frame EncodeForgetReply(const Header& header, const ForgetReplyInfo& reply) {
  size_t bytes = 16;
  for (const ForgetResult& r : reply.results) bytes += r.status.message().size() + 48;
  flatbuffers::FlatBufferBuilder fbb(InitialBuilderSize(header, bytes));
  std::vector<flatbuffers::Offset<wire::ForgetServerResult>> results;
  for (const ForgetResult& r : reply.results) {
    const auto text = r.status.message();  // absl::string_view
    flatbuffers::Offset<flatbuffers::String> message;
    if (!text.empty()) message = fbb.CreateString(text.data(), text.size());
    results.push_back(wire::CreateForgetServerResult(
        fbb, r.server, r.erased, r.owned, static_cast<int32_t>(r.status.code()), message));
  }
  const auto body = wire::CreateForgetReply(fbb, reply.requested, fbb.CreateVector(results));
  return FinishEnvelope(fbb, header, wire::Body::ForgetReply, body.Union());
}

StatusOr<ForgetView> DecodedMessage::AsForgetRequest() const {
  TESSERA_RETURN_IF_ERROR(internal::ExpectType(type_, MessageType::kForgetRequest));
  const wire::ForgetRequest* w = envelope_->body_as_ForgetRequest();
  const flatbuffers::Vector<uint64_t>* keys = w->keys();
  if (keys == nullptr) return InvalidArgumentError("ForgetRequest.keys: missing");
  const uint64_t* data = keys->data();
  // As the data accessors: the verifier checks only 4-byte alignment.
  if (reinterpret_cast<uintptr_t>(data) % alignof(uint64_t) != 0) {
    return InvalidArgumentError("ForgetRequest.keys: misaligned vector");
  }
  ForgetView view;
  view.table = w->table();
  view.keys = std::span<const Key>(data, keys->size());
  view.reply_endpoint = StringOf(w->reply_endpoint());
  return view;
}

StatusOr<ForgetReplyInfo> DecodedMessage::AsForgetReply() const {
  TESSERA_RETURN_IF_ERROR(internal::ExpectType(type_, MessageType::kForgetReply));
  const wire::ForgetReply* w = envelope_->body_as_ForgetReply();
  ForgetReplyInfo info;
  info.requested = w->requested();
  if (w->results() != nullptr) {
    for (const wire::ForgetServerResult* r : *w->results()) {
      if (r == nullptr) return InvalidArgumentError("ForgetReply.results: missing entry");
      if (r->server() < 0) return InvalidArgumentError("ForgetReply.results: negative rank");
      ForgetResult result;
      result.server = r->server();
      result.erased = r->erased();
      result.owned = r->owned();
      if (r->status_code() != 0) {
        const std::string text = StringOf(r->status_message());
        result.status = Status(StatusCodeFromWire(r->status_code()),
                               absl::string_view(text.data(), text.size()));
      }
      info.results.push_back(std::move(result));
    }
  }
  return info;
}

}  // namespace tessera::protocol
