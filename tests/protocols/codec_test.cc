#include "protocols/codec.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "tests/protocols/codec_test_util.h"
#include "tests/testing/status_matchers.h"

namespace tessera::protocol {
namespace {

using testing::AllKindsOfTables;
using testing::Craft;
using testing::CraftOptions;
using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;
using testing::HeartbeatBody;
using testing::MakeClusterView;
using testing::MakeHeader;
using testing::MakeNode;
using testing::MakeTable;
using testing::SampleFrames;
using testing::SampleKeys;

bool PointsInto(const void* p, const Frame& frame) {
  const auto* b = static_cast<const uint8_t*>(p);
  return b >= frame.data() && b < frame.data() + frame.size();
}

void ExpectHeader(const Header& got, const Header& want) {
  EXPECT_EQ(got.request_id, want.request_id);
  EXPECT_EQ(got.is_reply, want.is_reply);
  EXPECT_EQ(got.sender, want.sender);
  EXPECT_EQ(got.token, want.token);
  EXPECT_EQ(got.status, want.status);
}

StatusCode CodeOf(const Frame& frame) { return DecodedMessage::Decode(frame).status().code(); }

// ---- round trips ----------------------------------------------------------------

TEST(CodecTest, RegisterRequestRoundTrip) {
  const Header h = MakeHeader();
  const RegisterRequest want{Role::kServer, 2, "tcp://10.1.2.3:41234", 9100, 123456789012, "h1"};
  ASSERT_OK_AND_ASSIGN(DecodedMessage msg, DecodedMessage::Decode(EncodeRegisterRequest(h, want)));
  EXPECT_EQ(msg.type(), MessageType::kRegisterRequest);
  ExpectHeader(msg.header(), h);
  ASSERT_OK_AND_ASSIGN(RegisterRequest got, msg.AsRegisterRequest());
  EXPECT_EQ(got, want);
}

TEST(CodecTest, RegisterRequestAnyRankRoundTrip) {
  const RegisterRequest want{Role::kWorker, kUnassignedRank, "", 0, 0, ""};
  ASSERT_OK_AND_ASSIGN(DecodedMessage msg,
                       DecodedMessage::Decode(EncodeRegisterRequest(MakeHeader(), want)));
  ASSERT_OK_AND_ASSIGN(RegisterRequest got, msg.AsRegisterRequest());
  EXPECT_EQ(got, want);
}

TEST(CodecTest, RegisterReplyRoundTrip) {
  const Header h = ReplyHeader(MakeHeader(77), kSchedulerId, "cluster-secret");
  ASSERT_OK_AND_ASSIGN(DecodedMessage msg,
                       DecodedMessage::Decode(EncodeRegisterReply(h, {Role::kWorker, 12})));
  EXPECT_EQ(msg.type(), MessageType::kRegisterReply);
  ExpectHeader(msg.header(), h);
  EXPECT_TRUE(msg.header().is_reply);
  EXPECT_EQ(msg.header().request_id, 77u);
  ASSERT_OK_AND_ASSIGN(NodeId id, msg.AsRegisterReply());
  EXPECT_EQ(id, (NodeId{Role::kWorker, 12}));
}

TEST(CodecTest, ClusterViewRoundTripWithNonUniformShardMap) {
  const ClusterView want = MakeClusterView();
  ASSERT_OK_AND_ASSIGN(DecodedMessage msg,
                       DecodedMessage::Decode(EncodeClusterView(MakeHeader(), want)));
  EXPECT_EQ(msg.type(), MessageType::kClusterView);
  ASSERT_OK_AND_ASSIGN(ClusterView got, msg.AsClusterView());
  EXPECT_EQ(got.epoch, want.epoch);
  EXPECT_EQ(got.heartbeat_interval_ms, want.heartbeat_interval_ms);
  EXPECT_EQ(got.shard_map.num_slots(), 13u);
  EXPECT_EQ(got.shard_map.num_servers(), 3);
  EXPECT_EQ(got.shard_map.slot_owner(), want.shard_map.slot_owner());
  EXPECT_EQ(got.servers, want.servers);
  EXPECT_EQ(got.workers, want.workers);
  EXPECT_EQ(got.tables, want.tables);
  EXPECT_EQ(got.tables.size(), 13u);
}

TEST(CodecTest, ClusterViewWithUniformMapAndNoWorkersOrTables) {
  ClusterView want;
  want.shard_map = ShardMap::Uniform(kDefaultNumSlots, 2);
  want.servers = {MakeNode(Role::kServer, 0), MakeNode(Role::kServer, 1)};
  ASSERT_OK_AND_ASSIGN(DecodedMessage msg,
                       DecodedMessage::Decode(EncodeClusterView(MakeHeader(), want)));
  ASSERT_OK_AND_ASSIGN(ClusterView got, msg.AsClusterView());
  EXPECT_EQ(got.shard_map.slot_owner(), want.shard_map.slot_owner());
  EXPECT_EQ(got.servers, want.servers);
  EXPECT_TRUE(got.workers.empty());
  EXPECT_TRUE(got.tables.empty());
}

TEST(CodecTest, ConfigureTablesRoundTripEveryOptimizerAndInitializer) {
  const std::vector<TableConfig> want = AllKindsOfTables();
  ASSERT_OK_AND_ASSIGN(DecodedMessage msg,
                       DecodedMessage::Decode(EncodeConfigureTables(MakeHeader(), want)));
  EXPECT_EQ(msg.type(), MessageType::kConfigureTables);
  ASSERT_OK_AND_ASSIGN(std::vector<TableConfig> got, msg.AsConfigureTables());
  EXPECT_EQ(got, want);
}

TEST(CodecTest, ConfigureTablesRoundTripDefaultConfig) {
  TableConfig t;  // documented defaults, zero admission/eviction
  t.name = "emb";
  ASSERT_OK_AND_ASSIGN(DecodedMessage msg, DecodedMessage::Decode(EncodeConfigureTables(
                                               MakeHeader(), std::vector<TableConfig>{t})));
  ASSERT_OK_AND_ASSIGN(std::vector<TableConfig> got, msg.AsConfigureTables());
  EXPECT_THAT(got, ElementsAre(t));
}

TEST(CodecTest, ConfigureTablesEmpty) {
  ASSERT_OK_AND_ASSIGN(DecodedMessage msg,
                       DecodedMessage::Decode(EncodeConfigureTables(MakeHeader(), {})));
  ASSERT_OK_AND_ASSIGN(std::vector<TableConfig> got, msg.AsConfigureTables());
  EXPECT_TRUE(got.empty());
}

TEST(CodecTest, HeartbeatAndAckRoundTrip) {
  const Header h = MakeHeader(5);
  ASSERT_OK_AND_ASSIGN(DecodedMessage hb, DecodedMessage::Decode(EncodeHeartbeat(h)));
  EXPECT_EQ(hb.type(), MessageType::kHeartbeat);
  ExpectHeader(hb.header(), h);
  const Header reply = ReplyHeader(h, kSchedulerId, "cluster-secret");
  ASSERT_OK_AND_ASSIGN(DecodedMessage ack, DecodedMessage::Decode(EncodeAck(reply)));
  EXPECT_EQ(ack.type(), MessageType::kAck);
  ExpectHeader(ack.header(), reply);
}

TEST(CodecTest, BarrierRequestRoundTrip) {
  for (BarrierGroup group : {BarrierGroup::kWorkers, BarrierGroup::kAll}) {
    ASSERT_OK_AND_ASSIGN(DecodedMessage msg,
                         DecodedMessage::Decode(EncodeBarrierRequest(MakeHeader(), group)));
    EXPECT_EQ(msg.type(), MessageType::kBarrierRequest);
    ASSERT_OK_AND_ASSIGN(BarrierGroup got, msg.AsBarrierRequest());
    EXPECT_EQ(got, group);
  }
}

TEST(CodecTest, ShutdownRequestRoundTrip) {
  for (std::string reason : {"", "all workers finished"}) {
    ASSERT_OK_AND_ASSIGN(DecodedMessage msg,
                         DecodedMessage::Decode(EncodeShutdownRequest(MakeHeader(), reason)));
    EXPECT_EQ(msg.type(), MessageType::kShutdownRequest);
    ASSERT_OK_AND_ASSIGN(std::string got, msg.AsShutdownRequest());
    EXPECT_EQ(got, reason);
  }
}

TEST(CodecTest, PullReadsKeysInPlace) {
  const Header h = MakeHeader();
  ASSERT_OK_AND_ASSIGN(DecodedMessage msg, DecodedMessage::Decode(EncodePull(h, 3, SampleKeys())));
  EXPECT_EQ(msg.type(), MessageType::kPullRequest);
  ExpectHeader(msg.header(), h);
  ASSERT_OK_AND_ASSIGN(PullView pull, msg.AsPull());
  EXPECT_EQ(pull.table, 3u);
  EXPECT_THAT(pull.keys, ElementsAreArray(SampleKeys()));
  EXPECT_TRUE(PointsInto(pull.keys.data(), msg.frame()));
  EXPECT_EQ(reinterpret_cast<uintptr_t>(pull.keys.data()) % alignof(Key), 0u);
}

TEST(CodecTest, PullFillWritesIntoTheBuffer) {
  Frame frame = EncodePull(MakeHeader(), 8, 1000, [](std::span<Key> out) {
    for (size_t i = 0; i < out.size(); ++i) out[i] = i * 0x9e3779b97f4a7c15ull;
  });
  ASSERT_OK_AND_ASSIGN(DecodedMessage msg, DecodedMessage::Decode(frame));
  ASSERT_OK_AND_ASSIGN(PullView pull, msg.AsPull());
  ASSERT_EQ(pull.keys.size(), 1000u);
  for (size_t i = 0; i < pull.keys.size(); ++i) EXPECT_EQ(pull.keys[i], i * 0x9e3779b97f4a7c15ull);
  // Same bytes as the encoder's frame: nothing was copied on decode.
  EXPECT_TRUE(PointsInto(pull.keys.data(), frame));
}

TEST(CodecTest, PullWithEmptyKeys) {
  ASSERT_OK_AND_ASSIGN(DecodedMessage msg,
                       DecodedMessage::Decode(EncodePull(MakeHeader(), 1, std::span<const Key>())));
  ASSERT_OK_AND_ASSIGN(PullView pull, msg.AsPull());
  EXPECT_EQ(pull.table, 1u);
  EXPECT_TRUE(pull.keys.empty());
}

TEST(CodecTest, PushReadsKeysAndGradsInPlace) {
  const std::vector<float> grads = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
  ASSERT_OK_AND_ASSIGN(DecodedMessage msg,
                       DecodedMessage::Decode(EncodePush(MakeHeader(), 2, SampleKeys(), grads)));
  EXPECT_EQ(msg.type(), MessageType::kPushRequest);
  ASSERT_OK_AND_ASSIGN(PushView push, msg.AsPush());
  EXPECT_EQ(push.table, 2u);
  EXPECT_THAT(push.keys, ElementsAreArray(SampleKeys()));
  EXPECT_THAT(push.grads, ElementsAreArray(grads));
  EXPECT_TRUE(PointsInto(push.keys.data(), msg.frame()));
  EXPECT_TRUE(PointsInto(push.grads.data(), msg.frame()));
  EXPECT_FALSE(msg.AsPushPull().ok());  // a Push is not a PushPull
}

TEST(CodecTest, PushFillWritesKeysAndGrads) {
  // Large enough that the builder would have to grow if it were undersized.
  constexpr size_t kKeys = 5000, kDim = 8;
  Frame frame = EncodePush(MakeHeader(), 1, kKeys, kKeys * kDim,
                           [](std::span<Key> keys, std::span<float> grads) {
                             for (size_t i = 0; i < keys.size(); ++i) keys[i] = i + 1;
                             for (size_t i = 0; i < grads.size(); ++i) grads[i] = 0.5f * i;
                           });
  ASSERT_OK_AND_ASSIGN(DecodedMessage msg, DecodedMessage::Decode(frame));
  ASSERT_OK_AND_ASSIGN(PushView push, msg.AsPush());
  ASSERT_EQ(push.keys.size(), kKeys);
  ASSERT_EQ(push.grads.size(), kKeys * kDim);
  for (size_t i = 0; i < kKeys; ++i) ASSERT_EQ(push.keys[i], i + 1);
  for (size_t i = 0; i < kKeys * kDim; ++i) ASSERT_EQ(push.grads[i], 0.5f * i);
}

TEST(CodecTest, PushPullRoundTrip) {
  Frame frame = EncodePushPull(MakeHeader(), 6, 3, 6, [](std::span<Key> k, std::span<float> g) {
    k[0] = 10;
    k[1] = 20;
    k[2] = 30;
    for (size_t i = 0; i < g.size(); ++i) g[i] = -static_cast<float>(i);
  });
  ASSERT_OK_AND_ASSIGN(DecodedMessage msg, DecodedMessage::Decode(frame));
  EXPECT_EQ(msg.type(), MessageType::kPushPullRequest);
  ASSERT_OK_AND_ASSIGN(PushView view, msg.AsPushPull());
  EXPECT_EQ(view.table, 6u);
  EXPECT_THAT(view.keys, ElementsAre(10u, 20u, 30u));
  EXPECT_THAT(view.grads, ElementsAre(-0.0f, -1.0f, -2.0f, -3.0f, -4.0f, -5.0f));
  EXPECT_FALSE(msg.AsPush().ok());
}

TEST(CodecTest, PushWithNoKeys) {
  ASSERT_OK_AND_ASSIGN(DecodedMessage msg,
                       DecodedMessage::Decode(EncodePush(MakeHeader(), 2, std::span<const Key>(),
                                                         std::span<const float>())));
  ASSERT_OK_AND_ASSIGN(PushView push, msg.AsPush());
  EXPECT_TRUE(push.keys.empty());
  EXPECT_TRUE(push.grads.empty());
}

TEST(CodecTest, ValuesReplyReadsValuesInPlace) {
  const Header h = ReplyHeader(MakeHeader(99), {Role::kServer, 1}, "cluster-secret");
  const std::vector<float> values = {0.25f, -0.5f, 1e-20f, 3e20f};
  ASSERT_OK_AND_ASSIGN(DecodedMessage msg, DecodedMessage::Decode(EncodeValuesReply(h, values)));
  EXPECT_EQ(msg.type(), MessageType::kValuesReply);
  ExpectHeader(msg.header(), h);
  ASSERT_OK_AND_ASSIGN(std::span<const float> got, msg.AsValuesReply());
  EXPECT_THAT(got, ElementsAreArray(values));
  EXPECT_TRUE(PointsInto(got.data(), msg.frame()));

  ASSERT_OK_AND_ASSIGN(DecodedMessage empty,
                       DecodedMessage::Decode(EncodeValuesReply(h, 0, [](std::span<float>) {})));
  ASSERT_OK_AND_ASSIGN(std::span<const float> none, empty.AsValuesReply());
  EXPECT_TRUE(none.empty());
}

TEST(CodecTest, DensePullAndPushRoundTrip) {
  ASSERT_OK_AND_ASSIGN(DecodedMessage pull,
                       DecodedMessage::Decode(EncodeDensePull(MakeHeader(), 4, 1u << 31, 77)));
  EXPECT_EQ(pull.type(), MessageType::kDensePullRequest);
  ASSERT_OK_AND_ASSIGN(DensePullView dp, pull.AsDensePull());
  EXPECT_EQ(dp.table, 4u);
  EXPECT_EQ(dp.begin, 1u << 31);
  EXPECT_EQ(dp.count, 77u);

  const std::vector<float> grads = {1.5f, 2.5f, 3.5f};
  ASSERT_OK_AND_ASSIGN(DecodedMessage push,
                       DecodedMessage::Decode(EncodeDensePush(MakeHeader(), 4, 10, grads)));
  EXPECT_EQ(push.type(), MessageType::kDensePushRequest);
  ASSERT_OK_AND_ASSIGN(DensePushView dq, push.AsDensePush());
  EXPECT_EQ(dq.table, 4u);
  EXPECT_EQ(dq.begin, 10u);
  EXPECT_THAT(dq.grads, ElementsAreArray(grads));
  EXPECT_TRUE(PointsInto(dq.grads.data(), push.frame()));
}

TEST(CodecTest, ErrorReplyCarriesStatusAndMessage) {
  const Header request = MakeHeader(1234);
  const Header reply = ReplyHeader(request, {Role::kServer, 0}, "cluster-secret",
                                   ResourceExhaustedError("table 3 is full"));
  EXPECT_EQ(reply.request_id, 1234u);
  EXPECT_TRUE(reply.is_reply);
  ASSERT_OK_AND_ASSIGN(DecodedMessage msg, DecodedMessage::Decode(EncodeAck(reply)));
  EXPECT_EQ(msg.type(), MessageType::kAck);
  EXPECT_EQ(msg.header().request_id, 1234u);
  EXPECT_EQ(msg.header().sender, (NodeId{Role::kServer, 0}));
  EXPECT_EQ(msg.header().status.code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(msg.header().status.message(), "table 3 is full");
}

TEST(CodecTest, ErrorReplyWithoutBody) {
  CraftOptions o;
  o.is_reply = true;
  o.status_code = static_cast<int32_t>(StatusCode::kUnavailable);
  o.status_message = "server shutting down";
  ASSERT_OK_AND_ASSIGN(DecodedMessage msg,
                       DecodedMessage::Decode(Craft(wire::Body::NONE, nullptr, o)));
  EXPECT_EQ(msg.type(), MessageType::kNone);
  EXPECT_EQ(msg.header().status, UnavailableError("server shutting down"));
  EXPECT_FALSE(msg.AsPull().ok());
  EXPECT_FALSE(msg.AsValuesReply().ok());
}

TEST(CodecTest, UnknownStatusCodeBecomesUnknown) {
  CraftOptions o;
  o.is_reply = true;
  o.status_code = 999;
  o.status_message = "from the future";
  ASSERT_OK_AND_ASSIGN(
      DecodedMessage msg,
      DecodedMessage::Decode(Craft(
          wire::Body::Ack, [](auto& fbb) { return wire::CreateAck(fbb).Union(); }, o)));
  EXPECT_EQ(msg.header().status.code(), StatusCode::kUnknown);
  EXPECT_EQ(msg.header().status.message(), "from the future");
}

TEST(CodecTest, EncodedFramesAreAlignedOwnedAndIdentified) {
  for (const auto& [name, frame] : SampleFrames()) {
    SCOPED_TRACE(name);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(frame.data()) % 8, 0u);
    EXPECT_NE(frame.owner(), nullptr);
    ASSERT_GE(frame.size(), 8u);
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(frame.data()) + 4, 4), "TSRA");
    EXPECT_OK(DecodedMessage::Decode(frame));
  }
}

TEST(CodecTest, FramesWithoutEightByteFieldsAreAligned) {
  // request_id 0 is a default and left out, so no field needs 8 bytes.
  const Header h = MakeHeader(0);
  for (const Frame& frame :
       {EncodeHeartbeat(h), EncodeAck(h), EncodeBarrierRequest(h, BarrierGroup::kWorkers),
        EncodePull(h, 0, std::span<const Key>()), EncodeShutdownRequest(h, "x")}) {
    EXPECT_EQ(reinterpret_cast<uintptr_t>(frame.data()) % 8, 0u);
    EXPECT_EQ(frame.size() % 8, 0u);
    ASSERT_OK_AND_ASSIGN(DecodedMessage msg, DecodedMessage::Decode(frame));
    EXPECT_EQ(msg.frame().data(), frame.data());  // read in place, not copied
  }
}

TEST(CodecTest, MisalignedFrameDecodes) {
  const Frame original =
      EncodePush(MakeHeader(), 2, SampleKeys(), std::vector<float>{1, 2, 3, 4, 5, 6, 7, 8, 9, 10});
  for (size_t shift : {1, 2, 3, 4, 5, 6, 7}) {
    SCOPED_TRACE(shift);
    auto storage = std::make_shared<std::vector<uint64_t>>(original.size() / 8 + 2);
    auto* base = reinterpret_cast<uint8_t*>(storage->data()) + shift;
    std::memcpy(base, original.data(), original.size());
    const Frame misaligned(base, original.size(), storage);
    ASSERT_OK_AND_ASSIGN(DecodedMessage msg, DecodedMessage::Decode(misaligned));
    ASSERT_OK_AND_ASSIGN(PushView push, msg.AsPush());
    EXPECT_THAT(push.keys, ElementsAreArray(SampleKeys()));
    EXPECT_THAT(push.grads, ElementsAre(1, 2, 3, 4, 5, 6, 7, 8, 9, 10));
    EXPECT_EQ(reinterpret_cast<uintptr_t>(push.keys.data()) % alignof(Key), 0u);
    // Decode copied the bytes to an aligned buffer, which the message owns.
    EXPECT_FALSE(PointsInto(push.keys.data(), misaligned));
    EXPECT_TRUE(PointsInto(push.keys.data(), msg.frame()));
  }
}

TEST(CodecTest, DecodedMessageOutlivesCallersFrameAndMoves) {
  StatusOr<DecodedMessage> decoded =
      DecodedMessage::Decode(EncodePull(MakeHeader(), 3, SampleKeys()));
  ASSERT_OK(decoded);
  DecodedMessage moved = std::move(decoded).value();
  DecodedMessage copy = moved;
  ASSERT_OK_AND_ASSIGN(PullView pull, copy.AsPull());
  EXPECT_THAT(pull.keys, ElementsAreArray(SampleKeys()));
}

TEST(CodecTest, MessageTypeNames) {
  EXPECT_EQ(MessageTypeName(MessageType::kNone), "None");
  EXPECT_EQ(MessageTypeName(MessageType::kClusterView), "ClusterView");
  EXPECT_EQ(MessageTypeName(MessageType::kDensePushRequest), "DensePushRequest");
  for (const auto& [name, frame] : SampleFrames()) {
    ASSERT_OK_AND_ASSIGN(DecodedMessage msg, DecodedMessage::Decode(frame));
    EXPECT_NE(MessageTypeName(msg.type()), "Unknown") << name;
  }
}

// ---- rejections -----------------------------------------------------------------

TEST(CodecTest, RejectsEmptyAndShortBuffers) {
  EXPECT_EQ(CodeOf(Frame()), StatusCode::kInvalidArgument);
  EXPECT_EQ(CodeOf(Frame::FromString("")), StatusCode::kInvalidArgument);
  EXPECT_EQ(CodeOf(Frame::FromString("1234TSRA")), StatusCode::kInvalidArgument);
  const Frame hb = EncodeHeartbeat(MakeHeader());
  EXPECT_EQ(CodeOf(Frame::Copy(hb.data(), hb.size() - 1)), StatusCode::kInvalidArgument);
}

TEST(CodecTest, RejectsWrongIdentifier) {
  const Frame hb = EncodeHeartbeat(MakeHeader());
  std::string bytes(hb.view());
  bytes[4] = 'X';
  StatusOr<DecodedMessage> got = DecodedMessage::Decode(Frame::FromString(bytes));
  EXPECT_EQ(got.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(got.status().message()), HasSubstr("identifier"));
}

TEST(CodecTest, RejectsWrongVersionWithFailedPrecondition) {
  CraftOptions o;
  o.version = kProtocolVersion + 1;
  StatusOr<DecodedMessage> got =
      DecodedMessage::Decode(Craft(wire::Body::Heartbeat, HeartbeatBody(), o));
  EXPECT_EQ(got.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(got.status().message()),
              HasSubstr("version " + std::to_string(kProtocolVersion + 1)));
  EXPECT_THAT(std::string(got.status().message()),
              HasSubstr("version " + std::to_string(kProtocolVersion)));
  // The version is checked before the rest: a body this version does not
  // know still reports the version mismatch.
  EXPECT_EQ(CodeOf(Craft(200, HeartbeatBody(), o)), StatusCode::kFailedPrecondition);
  o.version = 0;  // also what an absent version field reads as
  EXPECT_EQ(CodeOf(Craft(wire::Body::Heartbeat, HeartbeatBody(), o)),
            StatusCode::kFailedPrecondition);
}

TEST(CodecTest, RejectsBadEnvelopeFields) {
  CraftOptions no_sender;
  no_sender.with_sender = false;
  EXPECT_EQ(CodeOf(Craft(wire::Body::Heartbeat, HeartbeatBody(), no_sender)),
            StatusCode::kInvalidArgument);
  CraftOptions bad_role;
  bad_role.sender_role = 3;
  EXPECT_EQ(CodeOf(Craft(wire::Body::Heartbeat, HeartbeatBody(), bad_role)),
            StatusCode::kInvalidArgument);
  CraftOptions bad_rank;
  bad_rank.sender_rank = -2;
  EXPECT_EQ(CodeOf(Craft(wire::Body::Heartbeat, HeartbeatBody(), bad_rank)),
            StatusCode::kInvalidArgument);
  CraftOptions unassigned;
  unassigned.sender_rank = kUnassignedRank;  // a node before registration
  EXPECT_OK(DecodedMessage::Decode(Craft(wire::Body::Heartbeat, HeartbeatBody(), unassigned)));
}

TEST(CodecTest, RejectsBadBodies) {
  // Unknown union tag.
  EXPECT_EQ(CodeOf(Craft(static_cast<uint8_t>(wire::Body::MAX) + 1, HeartbeatBody())),
            StatusCode::kInvalidArgument);
  // A tag without a body.
  EXPECT_EQ(CodeOf(Craft(wire::Body::PullRequest, nullptr)), StatusCode::kInvalidArgument);
  // A body without a tag.
  EXPECT_EQ(CodeOf(Craft(wire::Body::NONE, HeartbeatBody())), StatusCode::kInvalidArgument);
  // No body: only error replies may omit it.
  EXPECT_EQ(CodeOf(Craft(wire::Body::NONE, nullptr)), StatusCode::kInvalidArgument);
  CraftOptions ok_reply;
  ok_reply.is_reply = true;
  EXPECT_EQ(CodeOf(Craft(wire::Body::NONE, nullptr, ok_reply)), StatusCode::kInvalidArgument);
}

TEST(CodecTest, WrongAccessorForTypeIsInvalidArgument) {
  ASSERT_OK_AND_ASSIGN(DecodedMessage hb, DecodedMessage::Decode(EncodeHeartbeat(MakeHeader())));
  EXPECT_EQ(hb.AsRegisterRequest().status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(hb.AsRegisterReply().status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(hb.AsClusterView().status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(hb.AsConfigureTables().status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(hb.AsBarrierRequest().status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(hb.AsShutdownRequest().status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(hb.AsPull().status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(hb.AsPush().status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(hb.AsPushPull().status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(hb.AsValuesReply().status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(hb.AsDensePull().status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(hb.AsDensePush().status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(hb.AsPull().status().message()), HasSubstr("PullRequest"));
  EXPECT_THAT(std::string(hb.AsPull().status().message()), HasSubstr("Heartbeat"));
}

TEST(CodecTest, RejectsInvalidTableConfig) {
  TableConfig bad = MakeTable(1, OptimizerType::kAdam, InitializerType::kUniform);
  bad.dim = 0;
  ASSERT_OK_AND_ASSIGN(DecodedMessage configure, DecodedMessage::Decode(EncodeConfigureTables(
                                                     MakeHeader(), std::vector<TableConfig>{bad})));
  StatusOr<std::vector<TableConfig>> tables = configure.AsConfigureTables();
  EXPECT_EQ(tables.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(tables.status().message()), HasSubstr("dim"));

  ClusterView view = MakeClusterView();
  view.tables[3].optimizer.learning_rate = -1.0f;
  ASSERT_OK_AND_ASSIGN(DecodedMessage msg,
                       DecodedMessage::Decode(EncodeClusterView(MakeHeader(), view)));
  EXPECT_EQ(msg.AsClusterView().status().code(), StatusCode::kInvalidArgument);
}

TEST(CodecTest, RejectsOutOfRangeTableEnums) {
  for (int field = 0; field < 3; ++field) {
    SCOPED_TRACE(field);
    auto body = [field](flatbuffers::FlatBufferBuilder& fbb) {
      const auto name = fbb.CreateString("t");
      const auto opt = wire::CreateOptimizerConfigW(
          fbb, static_cast<wire::OptimizerType>(field == 0 ? 4 : 0), 0.1f);
      const auto init = wire::CreateInitializerConfigW(
          fbb, static_cast<wire::InitializerType>(field == 1 ? 3 : 0), 0.1f);
      const auto table = wire::CreateTableConfigW(
          fbb, 1, name, static_cast<wire::TableKind>(field == 2 ? 2 : 0), 8, 0, opt, init);
      std::vector<flatbuffers::Offset<wire::TableConfigW>> tables = {table};
      return wire::CreateConfigureTables(fbb, fbb.CreateVector(tables)).Union();
    };
    ASSERT_OK_AND_ASSIGN(DecodedMessage msg,
                         DecodedMessage::Decode(Craft(wire::Body::ConfigureTables, body)));
    EXPECT_EQ(msg.AsConfigureTables().status().code(), StatusCode::kInvalidArgument);
  }
}

TEST(CodecTest, RejectsTableConfigWithoutOptimizer) {
  auto body = [](flatbuffers::FlatBufferBuilder& fbb) {
    const auto name = fbb.CreateString("t");
    const auto init = wire::CreateInitializerConfigW(fbb);
    const auto table =
        wire::CreateTableConfigW(fbb, 1, name, wire::TableKind::Sparse, 8, 0, 0, init);
    std::vector<flatbuffers::Offset<wire::TableConfigW>> tables = {table};
    return wire::CreateConfigureTables(fbb, fbb.CreateVector(tables)).Union();
  };
  ASSERT_OK_AND_ASSIGN(DecodedMessage msg,
                       DecodedMessage::Decode(Craft(wire::Body::ConfigureTables, body)));
  EXPECT_EQ(msg.AsConfigureTables().status().code(), StatusCode::kInvalidArgument);
}

TEST(CodecTest, RejectsBadSlotOwner) {
  ClusterView view = MakeClusterView();
  std::vector<int32_t> owners = view.shard_map.slot_owner();
  owners[5] = 3;  // only servers 0..2 exist
  view.shard_map = ShardMap(owners, 3);
  ASSERT_OK_AND_ASSIGN(DecodedMessage msg,
                       DecodedMessage::Decode(EncodeClusterView(MakeHeader(), view)));
  StatusOr<ClusterView> got = msg.AsClusterView();
  EXPECT_EQ(got.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(got.status().message()), HasSubstr("slot 5"));

  owners[5] = -1;
  view.shard_map = ShardMap(owners, 3);
  ASSERT_OK_AND_ASSIGN(msg, DecodedMessage::Decode(EncodeClusterView(MakeHeader(), view)));
  EXPECT_EQ(msg.AsClusterView().status().code(), StatusCode::kInvalidArgument);

  view.shard_map = ShardMap();  // no slots at all
  ASSERT_OK_AND_ASSIGN(msg, DecodedMessage::Decode(EncodeClusterView(MakeHeader(), view)));
  EXPECT_EQ(msg.AsClusterView().status().code(), StatusCode::kInvalidArgument);
}

TEST(CodecTest, RejectsSlotOwnerCountMismatch) {
  auto body = [](flatbuffers::FlatBufferBuilder& fbb) {
    const auto owners = fbb.CreateVector(std::vector<int32_t>{0, 0, 0});
    const wire::NodeIdW id(wire::Role::Server, 0);
    std::vector<flatbuffers::Offset<wire::NodeInfoW>> servers = {wire::CreateNodeInfoW(fbb, &id)};
    return wire::CreateClusterView(fbb, 1, /*num_slots=*/4, owners, fbb.CreateVector(servers))
        .Union();
  };
  ASSERT_OK_AND_ASSIGN(DecodedMessage msg,
                       DecodedMessage::Decode(Craft(wire::Body::ClusterView, body)));
  EXPECT_EQ(msg.AsClusterView().status().code(), StatusCode::kInvalidArgument);
}

TEST(CodecTest, RejectsNodeIdsInconsistentWithPosition) {
  ClusterView view = MakeClusterView();
  view.servers[1].id.rank = 2;
  ASSERT_OK_AND_ASSIGN(DecodedMessage msg,
                       DecodedMessage::Decode(EncodeClusterView(MakeHeader(), view)));
  EXPECT_EQ(msg.AsClusterView().status().code(), StatusCode::kInvalidArgument);

  view = MakeClusterView();
  view.workers[0].id.role = Role::kServer;
  ASSERT_OK_AND_ASSIGN(msg, DecodedMessage::Decode(EncodeClusterView(MakeHeader(), view)));
  EXPECT_EQ(msg.AsClusterView().status().code(), StatusCode::kInvalidArgument);
}

TEST(CodecTest, RejectsBadRegistration) {
  RegisterRequest request{Role::kWorker, -7, "tcp://x:1", 0, 0, ""};
  ASSERT_OK_AND_ASSIGN(DecodedMessage msg,
                       DecodedMessage::Decode(EncodeRegisterRequest(MakeHeader(), request)));
  EXPECT_EQ(msg.AsRegisterRequest().status().code(), StatusCode::kInvalidArgument);

  auto bad_role = [](flatbuffers::FlatBufferBuilder& fbb) {
    return wire::CreateRegisterRequest(fbb, static_cast<wire::Role>(9)).Union();
  };
  ASSERT_OK_AND_ASSIGN(msg, DecodedMessage::Decode(Craft(wire::Body::RegisterRequest, bad_role)));
  EXPECT_EQ(msg.AsRegisterRequest().status().code(), StatusCode::kInvalidArgument);

  // An assigned id must have a real rank.
  ASSERT_OK_AND_ASSIGN(msg, DecodedMessage::Decode(EncodeRegisterReply(
                                MakeHeader(), {Role::kWorker, kUnassignedRank})));
  EXPECT_EQ(msg.AsRegisterReply().status().code(), StatusCode::kInvalidArgument);
  auto no_id = [](flatbuffers::FlatBufferBuilder& fbb) {
    return wire::CreateRegisterReply(fbb).Union();
  };
  ASSERT_OK_AND_ASSIGN(msg, DecodedMessage::Decode(Craft(wire::Body::RegisterReply, no_id)));
  EXPECT_EQ(msg.AsRegisterReply().status().code(), StatusCode::kInvalidArgument);
}

TEST(CodecTest, RejectsBadBarrierGroup) {
  auto body = [](flatbuffers::FlatBufferBuilder& fbb) {
    return wire::CreateBarrierRequest(fbb, static_cast<wire::BarrierGroup>(2)).Union();
  };
  ASSERT_OK_AND_ASSIGN(DecodedMessage msg,
                       DecodedMessage::Decode(Craft(wire::Body::BarrierRequest, body)));
  EXPECT_EQ(msg.AsBarrierRequest().status().code(), StatusCode::kInvalidArgument);
}

TEST(CodecTest, RejectsMissingDataVectors) {
  auto pull = [](flatbuffers::FlatBufferBuilder& fbb) {
    return wire::CreatePullRequest(fbb, 1).Union();
  };
  ASSERT_OK_AND_ASSIGN(DecodedMessage msg,
                       DecodedMessage::Decode(Craft(wire::Body::PullRequest, pull)));
  EXPECT_EQ(msg.AsPull().status().code(), StatusCode::kInvalidArgument);

  auto push = [](flatbuffers::FlatBufferBuilder& fbb) {
    return wire::CreatePushRequest(fbb, 1, fbb.CreateVector(std::vector<uint64_t>{1, 2})).Union();
  };
  ASSERT_OK_AND_ASSIGN(msg, DecodedMessage::Decode(Craft(wire::Body::PushRequest, push)));
  EXPECT_EQ(msg.AsPush().status().code(), StatusCode::kInvalidArgument);

  auto values = [](flatbuffers::FlatBufferBuilder& fbb) {
    return wire::CreateValuesReply(fbb).Union();
  };
  ASSERT_OK_AND_ASSIGN(msg, DecodedMessage::Decode(Craft(wire::Body::ValuesReply, values)));
  EXPECT_EQ(msg.AsValuesReply().status().code(), StatusCode::kInvalidArgument);

  auto dense = [](flatbuffers::FlatBufferBuilder& fbb) {
    return wire::CreateDensePushRequest(fbb, 1, 0).Union();
  };
  ASSERT_OK_AND_ASSIGN(msg, DecodedMessage::Decode(Craft(wire::Body::DensePushRequest, dense)));
  EXPECT_EQ(msg.AsDensePush().status().code(), StatusCode::kInvalidArgument);
}

TEST(CodecTest, RejectsMisalignedKeyVector) {
  // The verifier checks only the 4-byte alignment of a vector's length, so a
  // hostile peer can point `keys` at a [uint] vector whose data is 4 mod 8.
  bool saw_misaligned = false;
  for (uint32_t len = 1; len <= 4; ++len) {
    auto body = [len](flatbuffers::FlatBufferBuilder& fbb) {
      fbb.CreateString(std::string(64, 'x'));  // room after the vector
      const auto words = fbb.CreateVector(std::vector<uint32_t>(len, 0x01010101));
      const flatbuffers::Offset<flatbuffers::Vector<uint64_t>> keys(words.o);
      return wire::CreatePullRequest(fbb, 1, keys).Union();
    };
    const Frame frame = Craft(wire::Body::PullRequest, body);
    ASSERT_OK_AND_ASSIGN(DecodedMessage msg, DecodedMessage::Decode(frame));
    const auto* keys = wire::GetEnvelope(msg.frame().data())->body_as_PullRequest()->keys();
    const bool misaligned = reinterpret_cast<uintptr_t>(keys->data()) % alignof(Key) != 0;
    saw_misaligned |= misaligned;
    EXPECT_EQ(msg.AsPull().ok(), !misaligned) << "len " << len;
  }
  EXPECT_TRUE(saw_misaligned);
}

TEST(CodecTest, RejectsOverflowingDenseRanges) {
  ASSERT_OK_AND_ASSIGN(DecodedMessage msg, DecodedMessage::Decode(EncodeDensePull(
                                               MakeHeader(), 1, ~uint64_t{0} - 5, 10)));
  EXPECT_EQ(msg.AsDensePull().status().code(), StatusCode::kInvalidArgument);
  ASSERT_OK_AND_ASSIGN(msg, DecodedMessage::Decode(EncodeDensePush(
                                MakeHeader(), 1, ~uint64_t{0} - 1, std::vector<float>{1, 2, 3})));
  EXPECT_EQ(msg.AsDensePush().status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace tessera::protocol
