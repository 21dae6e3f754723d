// The envelope: encoding of the common header, and DecodedMessage::Decode(),
// the single gate every received buffer passes before any field is read.
// Control messages are in codec_control.cc, data messages in codec_data.cc.
#include "protocols/codec.h"

#include <cstdint>
#include <cstring>
#include <memory>
#include <utility>
#include <vector>

#include "flatbuffers/flatbuffers.h"
#include "protocols/codec_internal.h"
#include "protocols/tessera_generated.h"

namespace tessera::protocol {
namespace {

// MessageType mirrors the generated union tag value for value, so converting
// is a cast.
#define TESSERA_SAME_TAG_(ours, theirs) \
  static_assert(static_cast<uint8_t>(MessageType::ours) == static_cast<uint8_t>(wire::Body::theirs))
TESSERA_SAME_TAG_(kNone, NONE);
TESSERA_SAME_TAG_(kRegisterRequest, RegisterRequest);
TESSERA_SAME_TAG_(kRegisterReply, RegisterReply);
TESSERA_SAME_TAG_(kClusterView, ClusterView);
TESSERA_SAME_TAG_(kConfigureTables, ConfigureTables);
TESSERA_SAME_TAG_(kHeartbeat, Heartbeat);
TESSERA_SAME_TAG_(kBarrierRequest, BarrierRequest);
TESSERA_SAME_TAG_(kShutdownRequest, ShutdownRequest);
TESSERA_SAME_TAG_(kAck, Ack);
TESSERA_SAME_TAG_(kPullRequest, PullRequest);
TESSERA_SAME_TAG_(kPushRequest, PushRequest);
TESSERA_SAME_TAG_(kPushPullRequest, PushPullRequest);
TESSERA_SAME_TAG_(kValuesReply, ValuesReply);
TESSERA_SAME_TAG_(kDensePullRequest, DensePullRequest);
TESSERA_SAME_TAG_(kDensePushRequest, DensePushRequest);
TESSERA_SAME_TAG_(kDataRequest, DataRequest);
TESSERA_SAME_TAG_(kDataChunkReply, DataChunkReply);
TESSERA_SAME_TAG_(kClockRequest, ClockRequest);
TESSERA_SAME_TAG_(kClockReply, ClockReply);
TESSERA_SAME_TAG_(kSaveRequest, SaveRequest);
TESSERA_SAME_TAG_(kSnapshotRequest, SnapshotRequest);
TESSERA_SAME_TAG_(kSnapshotFlushRequest, SnapshotFlushRequest);
TESSERA_SAME_TAG_(kRestoreRequest, RestoreRequest);
TESSERA_SAME_TAG_(kReplicateRequest, ReplicateRequest);
TESSERA_SAME_TAG_(kForgetRequest, ForgetRequest);
TESSERA_SAME_TAG_(kForgetReply, ForgetReply);
TESSERA_SAME_TAG_(kReplicaSyncRequest, ReplicaSyncRequest);
#undef TESSERA_SAME_TAG_

static_assert(static_cast<uint8_t>(Role::kScheduler) ==
              static_cast<uint8_t>(wire::Role::Scheduler));
static_assert(static_cast<uint8_t>(Role::kServer) == static_cast<uint8_t>(wire::Role::Server));
static_assert(static_cast<uint8_t>(Role::kWorker) == static_cast<uint8_t>(wire::Role::Worker));

// The largest scalar in the schema is 8 bytes (ulong keys). The builder
// aligns every field relative to the buffer start, so a buffer whose start is
// 8-byte aligned can be read in place.
constexpr uintptr_t kBufferAlignment = 8;

// Root offset (4) + file identifier (4) + smallest vtable (4) + table (4).
constexpr size_t kMinEnvelopeBytes = 16;

// Our schema nests at most 4 tables deep (Envelope > ClusterView >
// TableConfigW > OptimizerConfigW); anything much deeper is hostile.
flatbuffers::Verifier::Options VerifierOptions() {
  flatbuffers::Verifier::Options options;
  options.max_depth = 16;
  options.max_tables = 1u << 20;  // ~1M NodeInfos / table configs per view
  options.check_alignment = true;
  options.check_nested_flatbuffers = false;  // the schema has none
  return options;
}

// A copy of `frame` in 8-byte aligned memory.
Frame AlignedCopy(const Frame& frame) {
  auto words = std::make_shared<std::vector<uint64_t>>((frame.size() + 7) / 8);
  std::memcpy(words->data(), frame.data(), frame.size());
  const auto* data = reinterpret_cast<const uint8_t*>(words->data());
  return Frame(data, frame.size(), std::move(words));
}

// Reads Envelope.version after verifying only the root table's vtable and
// that one field. The version is the first field of Envelope and stays there
// in every version, so a peer speaking another version (whose envelope need
// not verify against our schema) is told FailedPrecondition rather than
// InvalidArgument.
StatusOr<uint16_t> ReadVersion(const uint8_t* buf, size_t size) {
  flatbuffers::Verifier verifier(buf, size, VerifierOptions());
  const flatbuffers::uoffset_t root = verifier.VerifyOffset(0);
  if (root == 0) return InvalidArgumentError("envelope: bad root offset");
  const auto* table = reinterpret_cast<const flatbuffers::Table*>(buf + root);
  if (!table->VerifyTableStart(verifier) ||
      !table->VerifyField<uint16_t>(verifier, wire::Envelope::VT_VERSION, sizeof(uint16_t))) {
    return InvalidArgumentError("envelope: unreadable version field");
  }
  return table->GetField<uint16_t>(wire::Envelope::VT_VERSION, 0);
}

// The body type, checked: a known union tag, a body present exactly when the
// tag is not NONE, and NONE only on error replies.
StatusOr<MessageType> CheckedBodyType(const wire::Envelope& env) {
  const auto raw = static_cast<uint8_t>(env.body_type());
  if (raw > static_cast<uint8_t>(wire::Body::MAX)) {
    return InvalidArgumentError(internal::Cat("envelope: unknown body type ", raw));
  }
  const auto type = static_cast<MessageType>(raw);
  if (type == MessageType::kNone) {
    if (env.body() != nullptr) return InvalidArgumentError("envelope: body without a body type");
    if (!env.is_reply() || env.status_code() == 0) {
      return InvalidArgumentError("envelope: no body (only error replies may omit it)");
    }
  } else if (env.body() == nullptr) {
    return InvalidArgumentError(
        internal::Cat("envelope: body type ", MessageTypeName(type), " without a body"));
  }
  return type;
}

std::string_view StringOf(const flatbuffers::String* s) {
  return s == nullptr ? std::string_view() : std::string_view(s->c_str(), s->size());
}

}  // namespace

std::string_view MessageTypeName(MessageType type) {
  switch (type) {
    case MessageType::kNone:
      return "None";
    case MessageType::kRegisterRequest:
      return "RegisterRequest";
    case MessageType::kRegisterReply:
      return "RegisterReply";
    case MessageType::kClusterView:
      return "ClusterView";
    case MessageType::kConfigureTables:
      return "ConfigureTables";
    case MessageType::kHeartbeat:
      return "Heartbeat";
    case MessageType::kBarrierRequest:
      return "BarrierRequest";
    case MessageType::kShutdownRequest:
      return "ShutdownRequest";
    case MessageType::kAck:
      return "Ack";
    case MessageType::kPullRequest:
      return "PullRequest";
    case MessageType::kPushRequest:
      return "PushRequest";
    case MessageType::kPushPullRequest:
      return "PushPullRequest";
    case MessageType::kValuesReply:
      return "ValuesReply";
    case MessageType::kDensePullRequest:
      return "DensePullRequest";
    case MessageType::kDensePushRequest:
      return "DensePushRequest";
    case MessageType::kDataRequest:
      return "DataRequest";
    case MessageType::kDataChunkReply:
      return "DataChunkReply";
    case MessageType::kClockRequest:
      return "ClockRequest";
    case MessageType::kClockReply:
      return "ClockReply";
    case MessageType::kSaveRequest:
      return "SaveRequest";
    case MessageType::kSnapshotRequest:
      return "SnapshotRequest";
    case MessageType::kSnapshotFlushRequest:
      return "SnapshotFlushRequest";
    case MessageType::kRestoreRequest:
      return "RestoreRequest";
    case MessageType::kReplicateRequest:
      return "ReplicateRequest";
    case MessageType::kReplicaSyncRequest:
      return "ReplicaSyncRequest";
    case MessageType::kForgetRequest:
      return "ForgetRequest";
    case MessageType::kForgetReply:
      return "ForgetReply";
  }
  return "Unknown";
}

Header ReplyHeader(const Header& request, NodeId self, std::string_view token, Status status) {
  Header reply;
  reply.request_id = request.request_id;
  reply.is_reply = true;
  reply.sender = self;
  reply.token = std::string(token);
  reply.status = std::move(status);
  return reply;
}

namespace internal {

size_t InitialBuilderSize(const Header& header, size_t payload_bytes) {
  // 256 covers the envelope, the body table, vtables and alignment padding.
  return payload_bytes + header.token.size() + header.status.message().size() + 256;
}

Frame FinishEnvelope(flatbuffers::FlatBufferBuilder& fbb, const Header& header, wire::Body type,
                     flatbuffers::Offset<void> body) {
  flatbuffers::Offset<flatbuffers::String> token;
  if (!header.token.empty()) token = fbb.CreateString(header.token);
  flatbuffers::Offset<flatbuffers::String> message;
  const auto text = header.status.message();  // absl::string_view
  if (!header.status.ok() && !text.empty()) message = fbb.CreateString(text.data(), text.size());
  const wire::NodeIdW sender = NodeIdToWire(header.sender);

  wire::EnvelopeBuilder envelope(fbb);
  envelope.add_request_id(header.request_id);
  envelope.add_body(body);
  envelope.add_token(token);
  envelope.add_status_message(message);
  envelope.add_sender(&sender);
  envelope.add_status_code(static_cast<int32_t>(header.status.code()));
  envelope.add_version(kProtocolVersion);
  envelope.add_is_reply(header.is_reply);
  envelope.add_body_type(type);
  // Pad the finished buffer to a multiple of 8 bytes even when it holds no
  // 8-byte field (e.g. request_id 0 is left out as a default): the buffer
  // ends at an 8-aligned address of its allocation, so its start then is
  // 8-aligned too and receivers can read it in place.
  fbb.TrackMinAlign(kBufferAlignment);
  wire::FinishEnvelopeBuffer(fbb, envelope.Finish());

  // Zero copy: the Frame shares the builder's own allocation.
  auto owner = std::make_shared<flatbuffers::DetachedBuffer>(fbb.Release());
  const uint8_t* data = owner->data();
  const size_t size = owner->size();
  return Frame(data, size, std::move(owner));
}

Status ExpectType(MessageType actual, MessageType wanted) {
  if (actual == wanted) return OkStatus();
  return InvalidArgumentError(internal::Cat("expected a ", MessageTypeName(wanted),
                                            " message, got ", MessageTypeName(actual)));
}

wire::NodeIdW NodeIdToWire(NodeId id) {
  return wire::NodeIdW(static_cast<wire::Role>(id.role), id.rank);
}

StatusOr<Role> RoleFromWire(wire::Role role, std::string_view what) {
  const auto raw = static_cast<uint8_t>(role);
  if (raw > static_cast<uint8_t>(wire::Role::MAX)) {
    return InvalidArgumentError(internal::Cat(what, ": unknown role ", raw));
  }
  return static_cast<Role>(raw);
}

StatusOr<NodeId> NodeIdFromWire(const wire::NodeIdW* id, std::string_view what) {
  if (id == nullptr) return InvalidArgumentError(internal::Cat(what, ": missing"));
  TESSERA_ASSIGN_OR_RETURN(Role role, RoleFromWire(id->role(), what));
  if (id->rank() < kUnassignedRank) {
    return InvalidArgumentError(internal::Cat(what, ": bad rank ", id->rank()));
  }
  return NodeId{role, id->rank()};
}

}  // namespace internal

StatusOr<DecodedMessage> DecodedMessage::Decode(Frame frame) {
  if (frame.data() == nullptr || frame.size() < kMinEnvelopeBytes) {
    return InvalidArgumentError(
        internal::Cat("envelope: ", frame.size(), " bytes is too short for a message"));
  }
  if (frame.size() >= FLATBUFFERS_MAX_BUFFER_SIZE) {
    return InvalidArgumentError(internal::Cat("envelope: ", frame.size(), " bytes is too large"));
  }
  // FlatBuffers aligns fields relative to the buffer start; reading a key
  // vector in place as uint64_t needs the start itself 8-byte aligned. Frames
  // from ZeroMQ and from our encoders are; anything else is copied once here.
  if (reinterpret_cast<uintptr_t>(frame.data()) % kBufferAlignment != 0) {
    frame = AlignedCopy(frame);
  }
  const uint8_t* buf = frame.data();
  const size_t size = frame.size();
  if (!wire::EnvelopeBufferHasIdentifier(buf)) {
    return InvalidArgumentError(
        internal::Cat("envelope: file identifier is not \"", wire::EnvelopeIdentifier(), "\""));
  }
  TESSERA_ASSIGN_OR_RETURN(const uint16_t version, ReadVersion(buf, size));
  if (version != kProtocolVersion) {
    return FailedPreconditionError(internal::Cat("protocol version mismatch: message has version ",
                                                 version, ", this node speaks version ",
                                                 kProtocolVersion));
  }
  flatbuffers::Verifier verifier(buf, size, VerifierOptions());
  if (!wire::VerifyEnvelopeBuffer(verifier)) {
    return InvalidArgumentError("envelope: FlatBuffers verification failed");
  }
  const wire::Envelope* env = wire::GetEnvelope(buf);
  TESSERA_ASSIGN_OR_RETURN(const MessageType type, CheckedBodyType(*env));
  TESSERA_ASSIGN_OR_RETURN(const NodeId sender,
                           internal::NodeIdFromWire(env->sender(), "envelope sender"));

  DecodedMessage msg;
  msg.header_.request_id = env->request_id();
  msg.header_.is_reply = env->is_reply();
  msg.header_.sender = sender;
  msg.header_.token = std::string(StringOf(env->token()));
  if (env->status_code() != 0) {
    const std::string_view text = StringOf(env->status_message());
    msg.header_.status =
        Status(StatusCodeFromWire(env->status_code()), absl::string_view(text.data(), text.size()));
  }
  msg.type_ = type;
  msg.envelope_ = env;  // points into frame's bytes, which moving keeps
  msg.frame_ = std::move(frame);
  return msg;
}

}  // namespace tessera::protocol
