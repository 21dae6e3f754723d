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
  DataChunkInfo c{false, 7, 2, "/data/train.tsv", 100, 5000, 40, 9, false};
  ASSERT_OK_AND_ASSIGN(DecodedMessage m, RoundTrip(EncodeDataChunkReply(MakeHeader(), c)));
  ASSERT_OK_AND_ASSIGN(DataChunkInfo back, m.AsDataChunkReply());
  EXPECT_EQ(back, c);
  DataChunkInfo wait;
  wait.retry = true;
  ASSERT_OK_AND_ASSIGN(DecodedMessage w, RoundTrip(EncodeDataChunkReply(MakeHeader(), wait)));
  ASSERT_OK_AND_ASSIGN(DataChunkInfo waited, w.AsDataChunkReply());
  EXPECT_TRUE(waited.retry);
  DataChunkInfo done;
  done.done = true;
  ASSERT_OK_AND_ASSIGN(DecodedMessage d, RoundTrip(EncodeDataChunkReply(MakeHeader(), done)));
  EXPECT_OK(d.AsDataChunkReply());
  DataChunkInfo bad{false, 1, 0, "/x", 10, 5, 1, 0, false};
  ASSERT_OK_AND_ASSIGN(DecodedMessage e, RoundTrip(EncodeDataChunkReply(MakeHeader(), bad)));
  EXPECT_EQ(e.AsDataChunkReply().status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(e.AsClockReply().status().code(), StatusCode::kInvalidArgument);
}

TEST(CodecTrainingTest, ClockAndSaveMessagesRoundTrip) {
  ASSERT_OK_AND_ASSIGN(DecodedMessage c,
                       RoundTrip(EncodeClockRequest(MakeHeader(), {12, true, false, {}})));
  ASSERT_OK_AND_ASSIGN(ClockInfo clock, c.AsClockRequest());
  EXPECT_EQ(clock.step, 12u);
  EXPECT_TRUE(clock.done);
  EXPECT_FALSE(clock.turn);
  EXPECT_FALSE(clock.position.has_value());
  ASSERT_OK_AND_ASSIGN(DecodedMessage p,
                       RoundTrip(EncodeClockRequest(
                           MakeHeader(), {5, false, false, DataPosition{9, 0}, /*idle=*/true})));
  ASSERT_OK_AND_ASSIGN(ClockInfo positioned, p.AsClockRequest());
  EXPECT_TRUE(positioned.idle);
  ASSERT_TRUE(positioned.position.has_value());
  EXPECT_EQ(*positioned.position, (DataPosition{9, 0}));
  ASSERT_OK_AND_ASSIGN(DecodedMessage t,
                       RoundTrip(EncodeClockRequest(MakeHeader(), {3, false, true, {}})));
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

TEST(CodecTrainingTest, SnapshotMessagesRoundTripAndRejectEmptyFields) {
  const SnapshotInfo snap{42, "/pub/42", true};
  ASSERT_OK_AND_ASSIGN(DecodedMessage s, RoundTrip(EncodeSnapshotRequest(MakeHeader(), snap)));
  ASSERT_OK_AND_ASSIGN(SnapshotInfo back, s.AsSnapshotRequest());
  EXPECT_EQ(back, snap);
  ASSERT_OK_AND_ASSIGN(DecodedMessage no_dir,
                       RoundTrip(EncodeSnapshotRequest(MakeHeader(), {3, "", false})));
  EXPECT_EQ(no_dir.AsSnapshotRequest().status().code(), StatusCode::kInvalidArgument);
  ASSERT_OK_AND_ASSIGN(DecodedMessage v0,
                       RoundTrip(EncodeSnapshotRequest(MakeHeader(), {0, "/p", false})));
  EXPECT_EQ(v0.AsSnapshotRequest().status().code(), StatusCode::kInvalidArgument);
  ASSERT_OK_AND_ASSIGN(DecodedMessage f, RoundTrip(EncodeSnapshotFlushRequest(MakeHeader(), 42)));
  ASSERT_OK_AND_ASSIGN(uint64_t flushed, f.AsSnapshotFlushRequest());
  EXPECT_EQ(flushed, 42u);
  EXPECT_EQ(f.AsSnapshotRequest().status().code(), StatusCode::kInvalidArgument);
}

TEST(CodecTrainingTest, RestoreRequestRoundTripsAndRejectsEmptyNames) {
  const std::vector<RestoreTable> tables = {
      {0, {"/p/1/user/part-00000.rows", "/p/2/user/part-00000.rows"}}, {5, {}}};
  ASSERT_OK_AND_ASSIGN(DecodedMessage r, RoundTrip(EncodeRestoreRequest(MakeHeader(), tables)));
  ASSERT_OK_AND_ASSIGN(std::vector<RestoreTable> back, r.AsRestoreRequest());
  EXPECT_EQ(back, tables);
  const std::vector<RestoreTable> bad = {{1, {""}}};
  ASSERT_OK_AND_ASSIGN(DecodedMessage b, RoundTrip(EncodeRestoreRequest(MakeHeader(), bad)));
  EXPECT_EQ(b.AsRestoreRequest().status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace tessera::protocol
