// Data messages: sparse Pull/Push/PushPull, ValuesReply, dense Pull/Push.
// Keys (u64) and values (f32) travel as FlatBuffers scalar vectors: contiguous
// little-endian arrays. Encoders let the caller write them straight into the
// builder's memory; accessors return spans into the received Frame.
#include <algorithm>
#include <bit>
#include <cstdint>
#include <limits>

#include "flatbuffers/flatbuffers.h"
#include "protocols/codec.h"
#include "protocols/codec_internal.h"
#include "protocols/tessera_generated.h"

namespace tessera::protocol {

// FlatBuffers stores scalars little-endian; the spans below read them in
// place, which is only correct on a little-endian host.
static_assert(std::endian::native == std::endian::little,
              "the codec reads key/value vectors in place; port it to big-endian hosts");
static_assert(sizeof(Key) == sizeof(uint64_t) && sizeof(float) == 4);

namespace {

using internal::FinishEnvelope;
using internal::InitialBuilderSize;

// The element pointer of a vector under construction. Valid until the next
// builder call that may grow the buffer.
template <typename T>
T* MutableData(flatbuffers::FlatBufferBuilder& fbb, flatbuffers::Offset<flatbuffers::Vector<T>> v) {
  return flatbuffers::GetMutableTemporaryPointer(fbb, v)->data();
}

template <typename T>
void CopyInto(std::span<const T> from, std::span<T> to) {
  std::copy(from.begin(), from.end(), to.begin());
}

// Shared by Push and PushPull, whose tables have the same fields.
Frame EncodeKeysGrads(const Header& header, wire::Body type, TableId table, size_t num_keys,
                      size_t num_grads, KeysValuesFill fill, uint64_t op_id) {
  flatbuffers::FlatBufferBuilder fbb(
      InitialBuilderSize(header, num_keys * sizeof(Key) + num_grads * sizeof(float)));
  Key* keys_data = nullptr;
  float* grads_data = nullptr;
  const auto keys = fbb.CreateUninitializedVector(num_keys, &keys_data);
  const auto grads = fbb.CreateUninitializedVector(num_grads, &grads_data);
  // Creating `grads` may have grown (moved) the buffer: locate both again.
  keys_data = MutableData(fbb, keys);
  grads_data = MutableData(fbb, grads);
  fill(std::span<Key>(keys_data, num_keys), std::span<float>(grads_data, num_grads));
  const flatbuffers::Offset<void> body =
      type == wire::Body::PushRequest
          ? wire::CreatePushRequest(fbb, table, keys, grads, op_id).Union()
          : wire::CreatePushPullRequest(fbb, table, keys, grads, op_id).Union();
  return FinishEnvelope(fbb, header, type, body);
}

// A span over a received scalar vector, or InvalidArgument if it is absent or
// misaligned. The verifier checks only the 4-byte alignment of a vector's
// length prefix, so a hostile buffer can misplace 8-byte elements; Decode()
// made the buffer start 8-byte aligned, so checking the address suffices.
template <typename T>
StatusOr<std::span<const T>> SpanOf(const flatbuffers::Vector<T>* v, std::string_view what) {
  if (v == nullptr) return InvalidArgumentError(internal::Cat(what, ": missing"));
  const T* data = v->data();
  if (reinterpret_cast<uintptr_t>(data) % alignof(T) != 0) {
    return InvalidArgumentError(internal::Cat(what, ": misaligned vector"));
  }
  return std::span<const T>(data, v->size());
}

// PushRequest and PushPullRequest.
template <typename W>
StatusOr<PushView> PushViewOf(const W& w, std::string_view name) {
  PushView view;
  view.table = w.table();
  TESSERA_ASSIGN_OR_RETURN(view.keys, SpanOf(w.keys(), internal::Cat(name, ".keys")));
  TESSERA_ASSIGN_OR_RETURN(view.grads, SpanOf(w.grads(), internal::Cat(name, ".grads")));
  view.op_id = w.op_id();
  return view;
}

Status CheckRange(uint64_t begin, uint64_t count, std::string_view what) {
  if (count > std::numeric_limits<uint64_t>::max() - begin) {
    return InvalidArgumentError(
        internal::Cat(what, ": range [", begin, ", +", count, ") overflows"));
  }
  return OkStatus();
}

}  // namespace

// ---- encoding -------------------------------------------------------------------

Frame EncodePull(const Header& header, TableId table, size_t num_keys, KeysFill fill) {
  flatbuffers::FlatBufferBuilder fbb(InitialBuilderSize(header, num_keys * sizeof(Key)));
  Key* keys_data = nullptr;
  const auto keys = fbb.CreateUninitializedVector(num_keys, &keys_data);
  fill(std::span<Key>(keys_data, num_keys));
  const auto body = wire::CreatePullRequest(fbb, table, keys);
  return FinishEnvelope(fbb, header, wire::Body::PullRequest, body.Union());
}

Frame EncodePull(const Header& header, TableId table, std::span<const Key> keys) {
  return EncodePull(header, table, keys.size(), [&](std::span<Key> out) { CopyInto(keys, out); });
}

Frame EncodePush(const Header& header, TableId table, size_t num_keys, size_t num_grads,
                 KeysValuesFill fill, uint64_t op_id) {
  return EncodeKeysGrads(header, wire::Body::PushRequest, table, num_keys, num_grads, fill, op_id);
}

Frame EncodePush(const Header& header, TableId table, std::span<const Key> keys,
                 std::span<const float> grads, uint64_t op_id) {
  return EncodePush(
      header, table, keys.size(), grads.size(),
      [&](std::span<Key> keys_out, std::span<float> grads_out) {
        CopyInto(keys, keys_out);
        CopyInto(grads, grads_out);
      },
      op_id);
}

Frame EncodePushPull(const Header& header, TableId table, size_t num_keys, size_t num_grads,
                     KeysValuesFill fill, uint64_t op_id) {
  return EncodeKeysGrads(header, wire::Body::PushPullRequest, table, num_keys, num_grads, fill,
                         op_id);
}

Frame EncodeValuesReply(const Header& header, size_t num_values, ValuesFill fill) {
  flatbuffers::FlatBufferBuilder fbb(InitialBuilderSize(header, num_values * sizeof(float)));
  float* values_data = nullptr;
  const auto values = fbb.CreateUninitializedVector(num_values, &values_data);
  fill(std::span<float>(values_data, num_values));
  const auto body = wire::CreateValuesReply(fbb, values);
  return FinishEnvelope(fbb, header, wire::Body::ValuesReply, body.Union());
}

Frame EncodeValuesReply(const Header& header, std::span<const float> values) {
  return EncodeValuesReply(header, values.size(),
                           [&](std::span<float> out) { CopyInto(values, out); });
}

Frame EncodeDensePull(const Header& header, TableId table, uint64_t begin, uint64_t count) {
  flatbuffers::FlatBufferBuilder fbb(InitialBuilderSize(header, 0));
  const auto body = wire::CreateDensePullRequest(fbb, table, begin, count);
  return FinishEnvelope(fbb, header, wire::Body::DensePullRequest, body.Union());
}

Frame EncodeDensePush(const Header& header, TableId table, uint64_t begin,
                      std::span<const float> grads, uint64_t op_id) {
  flatbuffers::FlatBufferBuilder fbb(InitialBuilderSize(header, grads.size() * sizeof(float)));
  float* grads_data = nullptr;
  const auto grads_vec = fbb.CreateUninitializedVector(grads.size(), &grads_data);
  CopyInto(grads, std::span<float>(grads_data, grads.size()));
  const auto body = wire::CreateDensePushRequest(fbb, table, begin, grads_vec, op_id);
  return FinishEnvelope(fbb, header, wire::Body::DensePushRequest, body.Union());
}

// ---- decoding -------------------------------------------------------------------
// Decode() guarantees: the buffer verified, and body_as_<type()>() is non-null.

StatusOr<PullView> DecodedMessage::AsPull() const {
  TESSERA_RETURN_IF_ERROR(internal::ExpectType(type_, MessageType::kPullRequest));
  const wire::PullRequest* w = envelope_->body_as_PullRequest();
  PullView view;
  view.table = w->table();
  TESSERA_ASSIGN_OR_RETURN(view.keys, SpanOf(w->keys(), "PullRequest.keys"));
  return view;
}

StatusOr<PushView> DecodedMessage::AsPush() const {
  TESSERA_RETURN_IF_ERROR(internal::ExpectType(type_, MessageType::kPushRequest));
  return PushViewOf(*envelope_->body_as_PushRequest(), "PushRequest");
}

StatusOr<PushView> DecodedMessage::AsPushPull() const {
  TESSERA_RETURN_IF_ERROR(internal::ExpectType(type_, MessageType::kPushPullRequest));
  return PushViewOf(*envelope_->body_as_PushPullRequest(), "PushPullRequest");
}

StatusOr<std::span<const float>> DecodedMessage::AsValuesReply() const {
  TESSERA_RETURN_IF_ERROR(internal::ExpectType(type_, MessageType::kValuesReply));
  return SpanOf(envelope_->body_as_ValuesReply()->values(), "ValuesReply.values");
}

StatusOr<DensePullView> DecodedMessage::AsDensePull() const {
  TESSERA_RETURN_IF_ERROR(internal::ExpectType(type_, MessageType::kDensePullRequest));
  const wire::DensePullRequest* w = envelope_->body_as_DensePullRequest();
  TESSERA_RETURN_IF_ERROR(CheckRange(w->begin(), w->count(), "DensePullRequest"));
  return DensePullView{w->table(), w->begin(), w->count()};
}

StatusOr<DensePushView> DecodedMessage::AsDensePush() const {
  TESSERA_RETURN_IF_ERROR(internal::ExpectType(type_, MessageType::kDensePushRequest));
  const wire::DensePushRequest* w = envelope_->body_as_DensePushRequest();
  DensePushView view;
  view.table = w->table();
  view.begin = w->begin();
  view.op_id = w->op_id();
  TESSERA_ASSIGN_OR_RETURN(view.grads, SpanOf(w->grads(), "DensePushRequest.grads"));
  TESSERA_RETURN_IF_ERROR(CheckRange(view.begin, view.grads.size(), "DensePushRequest"));
  return view;
}

}  // namespace tessera::protocol
