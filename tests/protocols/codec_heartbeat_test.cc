// Heartbeats with and without the node's figures (NodeStats, appended to
// Heartbeat for `tessera status`): both decode, so an older peer's empty
// heartbeat is still understood.
#include "gtest/gtest.h"
#include "protocols/codec.h"
#include "tests/protocols/codec_test_util.h"
#include "tests/testing/status_matchers.h"

namespace tessera::protocol {
namespace {

using testing::MakeHeader;

TEST(CodecHeartbeatTest, StatsRoundTrip) {
  NodeStats stats;
  stats.has_server_stats = true;
  stats.rows = 123456789012ull;
  stats.bytes = 1ull << 40;
  stats.keys_total = 77;
  stats.has_worker_stats = true;
  stats.examples_total = 5000;
  stats.steps_total = 20;
  stats.staleness = 3;
  const Header h = MakeHeader(9);
  ASSERT_OK_AND_ASSIGN(DecodedMessage msg, DecodedMessage::Decode(EncodeHeartbeat(h, stats)));
  EXPECT_EQ(msg.type(), MessageType::kHeartbeat);
  ASSERT_OK_AND_ASSIGN(std::optional<NodeStats> got, msg.AsHeartbeat());
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(*got, stats);
}

TEST(CodecHeartbeatTest, HeartbeatWithoutStatsDecodesAsNone) {
  ASSERT_OK_AND_ASSIGN(DecodedMessage msg, DecodedMessage::Decode(EncodeHeartbeat(MakeHeader())));
  ASSERT_OK_AND_ASSIGN(std::optional<NodeStats> got, msg.AsHeartbeat());
  EXPECT_FALSE(got.has_value());
}

TEST(CodecHeartbeatTest, AsHeartbeatRefusesOtherMessages) {
  ASSERT_OK_AND_ASSIGN(DecodedMessage msg, DecodedMessage::Decode(EncodeAck(MakeHeader())));
  EXPECT_FALSE(msg.AsHeartbeat().ok());
}

}  // namespace
}  // namespace tessera::protocol
