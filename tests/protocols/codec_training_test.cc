// Round trips and rejections of the training-coordination messages.
#include <gtest/gtest.h>

#include "tests/protocols/codec_test_util.h"
#include "tests/testing/status_matchers.h"

namespace tessera::protocol {
namespace {

using testing::MakeHeader;

StatusOr<DecodedMessage> RoundTrip(const Frame& f) { return DecodedMessage::Decode(f); }

TEST(CodecTrainingTest, DataRequestWithAndWithoutCompletedChunk) {
  ASSERT_OK_AND_ASSIGN(DecodedMessage a, RoundTrip(EncodeDataRequest(MakeHeader(), std::nullopt)));
  EXPECT_EQ(a.type(), MessageType::kDataRequest);
  ASSERT_OK_AND_ASSIGN(std::optional<uint64_t> none, a.AsDataRequest());
  EXPECT_FALSE(none.has_value());
  ASSERT_OK_AND_ASSIGN(DecodedMessage b, RoundTrip(EncodeDataRequest(MakeHeader(), 0)));
  ASSERT_OK_AND_ASSIGN(std::optional<uint64_t> zero, b.AsDataRequest());
  ASSERT_TRUE(zero.has_value());
  EXPECT_EQ(*zero, 0u);
}

TEST(CodecTrainingTest, DataChunkReplyRoundTripsAndRejectsBadRanges) {
  DataChunkInfo c{false, 7, 2, "/data/train.tsv", 100, 5000, 40, 9};
  ASSERT_OK_AND_ASSIGN(DecodedMessage m, RoundTrip(EncodeDataChunkReply(MakeHeader(), c)));
  ASSERT_OK_AND_ASSIGN(DataChunkInfo back, m.AsDataChunkReply());
  EXPECT_EQ(back, c);
  DataChunkInfo done;
  done.done = true;
  ASSERT_OK_AND_ASSIGN(DecodedMessage d, RoundTrip(EncodeDataChunkReply(MakeHeader(), done)));
  EXPECT_OK(d.AsDataChunkReply());
  DataChunkInfo bad{false, 1, 0, "/x", 10, 5, 1, 0};
  ASSERT_OK_AND_ASSIGN(DecodedMessage e, RoundTrip(EncodeDataChunkReply(MakeHeader(), bad)));
  EXPECT_EQ(e.AsDataChunkReply().status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(e.AsClockReply().status().code(), StatusCode::kInvalidArgument);
}

TEST(CodecTrainingTest, ClockAndSaveMessagesRoundTrip) {
  ASSERT_OK_AND_ASSIGN(DecodedMessage c,
                       RoundTrip(EncodeClockRequest(MakeHeader(), {12, true, false})));
  ASSERT_OK_AND_ASSIGN(ClockInfo clock, c.AsClockRequest());
  EXPECT_EQ(clock.step, 12u);
  EXPECT_TRUE(clock.done);
  EXPECT_FALSE(clock.turn);
  ASSERT_OK_AND_ASSIGN(DecodedMessage t,
                       RoundTrip(EncodeClockRequest(MakeHeader(), {3, false, true})));
  ASSERT_OK_AND_ASSIGN(ClockInfo turn, t.AsClockRequest());
  EXPECT_TRUE(turn.turn);
  ASSERT_OK_AND_ASSIGN(DecodedMessage r, RoundTrip(EncodeClockReply(MakeHeader(), {true, 3})));
  ASSERT_OK_AND_ASSIGN(ClockReplyInfo reply, r.AsClockReply());
  EXPECT_TRUE(reply.all_done);
  EXPECT_EQ(reply.spread, 3u);
  ASSERT_OK_AND_ASSIGN(DecodedMessage s, RoundTrip(EncodeSaveRequest(MakeHeader(), "/out/model")));
  ASSERT_OK_AND_ASSIGN(std::string dir, s.AsSaveRequest());
  EXPECT_EQ(dir, "/out/model");
  ASSERT_OK_AND_ASSIGN(DecodedMessage empty, RoundTrip(EncodeSaveRequest(MakeHeader(), "")));
  EXPECT_EQ(empty.AsSaveRequest().status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace tessera::protocol
