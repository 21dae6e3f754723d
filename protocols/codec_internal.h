// Helpers shared by the codec's translation units (codec.cc: envelope and
// Decode; codec_control.cc: control messages; codec_data.cc: data messages).
// Not part of the API: only protocols/codec*.cc include this header, because
// it exposes the generated FlatBuffers types.
#ifndef TESSERA_PROTOCOLS_CODEC_INTERNAL_H_
#define TESSERA_PROTOCOLS_CODEC_INTERNAL_H_

#include <concepts>
#include <cstddef>
#include <string>
#include <string_view>

#include "flatbuffers/flatbuffers.h"
#include "protocols/codec.h"
#include "protocols/tessera_generated.h"

namespace tessera::protocol::internal {

// Concatenation for error messages. (absl::StrCat takes absl::string_view,
// which Debian's abseil builds as its own type, not std::string_view.)
inline void AppendPiece(std::string& out, std::string_view piece) { out.append(piece); }
template <typename T>
requires std::integral<T> || std::floating_point<T>
void AppendPiece(std::string& out, T value) { out.append(std::to_string(value)); }
template <typename... Pieces>
std::string Cat(const Pieces&... pieces) {
  std::string out;
  (AppendPiece(out, pieces), ...);
  return out;
}

// Initial capacity of a builder whose vectors need `payload_bytes`, so that a
// data message is built without growing (and copying) the buffer.
size_t InitialBuilderSize(const Header& header, size_t payload_bytes);

// Adds the envelope (version, header fields, body of `type`) around `body`,
// finishes the buffer with the "TSRA" identifier and hands the builder's
// memory to a Frame without copying it. `fbb` is left empty.
Frame FinishEnvelope(flatbuffers::FlatBufferBuilder& fbb, const Header& header, wire::Body type,
                     flatbuffers::Offset<void> body);

// OK if `actual == wanted`; otherwise InvalidArgument naming both types.
Status ExpectType(MessageType actual, MessageType wanted);

wire::NodeIdW NodeIdToWire(NodeId id);
// InvalidArgument if `id` is missing, its role is out of range or its rank is
// below kUnassignedRank. `what` names the field in the error.
StatusOr<NodeId> NodeIdFromWire(const wire::NodeIdW* id, std::string_view what);
// InvalidArgument if `role` is not a Role value.
StatusOr<Role> RoleFromWire(wire::Role role, std::string_view what);

}  // namespace tessera::protocol::internal

#endif  // TESSERA_PROTOCOLS_CODEC_INTERNAL_H_
